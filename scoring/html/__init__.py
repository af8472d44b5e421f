"""The pages people look at: report.html and leaderboard.html, built from public fields."""
