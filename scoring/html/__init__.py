"""The pages people look at: report.html and leaderboard.html, built from public fields.

- ``pages``: rendering both pages from ``templates/`` (Jinja);
- ``sections``: the report's sections; ``figures``: its figures as SVG data URIs;
- ``leaderboard``: the leaderboard page's groups, columns and cells;
- ``fields``: reading a score.json record for the pages (what may be shown, how values read);
- ``summary``: the text summary printed after scoring, and its figure.
"""
