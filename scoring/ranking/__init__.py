"""After scoring: the leaderboard over a results folder, and what is published.

- ``leaderboard``: every score under a folder ranked by team, one row per team, CSV and HTML;
- ``publish``: a phase's leaderboard and the ranked entries' reports, from an allow-list.

Who an entrant is (a team name's rules) is checked at the door: ``scoring.checks.check_team``.
"""
