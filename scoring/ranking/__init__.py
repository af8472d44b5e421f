"""After scoring: who a score is from (teams), the leaderboard over a results folder, what is published."""
