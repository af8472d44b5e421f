"""Codabench's own checks of a competition bundle, applied before an organiser uploads it.

Each check follows the code that applies it on the server (codalab/codabench), named in
the check's message and comment; only the checks that depend on the bundle alone (not on
the server's database, users or queues) can be made here:

- ``src/apps/competitions/tasks.py``, ``unpack_competition``: ``competition.yaml`` at the
  root, ``version`` 2 picks ``V2Unpacker``; ``MAX_EXECUTION_TIME_LIMIT`` (600 s unless the
  server's administrator sets it) caps a phase's ``execution_time_limit`` in
  ``_send_to_compute_worker`` unless the competition runs on its own queue;
- ``src/apps/competitions/unpackers/v2.py``, ``V2Unpacker``: the keys it reads (``__init__``
  and each ``_unpack_*``) and what it refuses; a key it never reads is refused here, since
  an organiser who wrote it expects an effect it will not have;
- ``src/apps/competitions/unpackers/base_unpacker.py``: ``_validate_phase_ordering`` (each
  phase starts strictly after the previous one ends), ``_get_data_key`` (a file or folder
  the bundle names exists), ``_unpack_queue`` (a queue is named by its vhost);
- ``src/apps/queues/models.py``, ``Queue.vhost``: a UUID;
- ``src/apps/api/serializers/competitions.py``, ``CompetitionSerializer.validate_phases``
  and ``PhaseSerializer.validate_leaderboard``;
- ``src/apps/api/serializers/leaderboards.py``, ``LeaderboardSerializer.validate_columns``
  and ``ColumnSerializer.validate``; ``src/apps/leaderboards/models.py``, ``Leaderboard``
  and ``Column`` (field lengths and choices, ``SUBMISSION_RULES``).
"""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path
from typing import Any

MAX_EXECUTION_TIME_LIMIT = 600  # tasks.py: the default queue's limit, in seconds
# leaderboards/models.py, Leaderboard.SUBMISSION_RULES (default ADD: participants add by hand)
ADD, FORCE_LAST, FORCE_BEST = "Add", "Force_Last", "Force_Best"
SUBMISSION_RULES = (ADD, "Add_And_Delete", "Add_And_Delete_Multiple", FORCE_LAST, "Force_Latest_Multiple", FORCE_BEST)
SORTING = ("desc", "asc")  # Column.SORTING
COMPUTATIONS = ("avg", "sum", "min", "max")  # Column.COMPUTATION_CHOICES
LEADERBOARD_TITLE_CHARS, LEADERBOARD_KEY_CHARS = 64, 36  # Leaderboard.title, .key max_length
COLUMN_TITLE_CHARS, COLUMN_KEY_CHARS = 36, 36  # Column.title, .key max_length
DATA_KEYS = ("ingestion_program", "input_data", "scoring_program", "reference_data")

# The keys V2Unpacker reads, per object (v2.py; leaderboards are passed whole to
# LeaderboardSerializer, whose Meta.fields are what it reads).
COMPETITION_KEYS = frozenset(
    {
        "version",  # tasks.py, unpack_competition
        "title",
        "registration_auto_approve",
        "docker_image",
        "enable_detailed_results",
        "show_detailed_results_in_submission_panel",
        "show_detailed_results_in_leaderboard",
        "auto_run_submissions",
        "can_participants_make_submissions_public",
        "make_programs_available",
        "make_input_data_available",
        "description",
        "competition_type",
        "fact_sheet",
        "reward",
        "contact_email",
        "forum_enabled",
        "pages",
        "tasks",
        "solutions",
        "terms",
        "image",
        "queue",
        "phases",
        "leaderboards",
    }
)
PAGE_KEYS = frozenset({"title", "file"})
TASK_KEYS = frozenset({"index", "key", "name", "description", "ingestion_only_during_scoring", *DATA_KEYS})
SOLUTION_KEYS = frozenset({"index", "tasks", "key", "path", "name", "description"})
PHASE_KEYS = frozenset(
    {
        "index",
        "name",
        "description",
        "start",
        "end",
        "max_submissions_per_day",
        "max_submissions",
        "auto_migrate_to_this_phase",
        "hide_output",
        "hide_prediction_output",
        "hide_score_output",
        "tasks",
        "execution_time_limit",
        "public_data",
        "starting_kit",
    }
)
LEADERBOARD_KEYS = frozenset({"id", "primary_index", "title", "key", "columns", "hidden", "submission_rule"})
COLUMN_KEYS = frozenset(
    {"id", "computation", "computation_indexes", "title", "key", "sorting", "index", "hidden", "precision"}
)


class BundleRefused(ValueError):
    """What Codabench would refuse in a bundle, in one line naming the rule's file and function."""


def check_competition(
    competition: dict[str, Any], root: Path | None = None, max_execution_time_limit: int = MAX_EXECUTION_TIME_LIMIT
) -> None:
    """Raise BundleRefused at the first rule of Codabench's that ``competition`` breaks.

    ``root``: the bundle's folder, where the files it names must be (None: not checked).
    ``max_execution_time_limit``: the server's ``MAX_EXECUTION_TIME_LIMIT``, which binds
    phases only when the competition has no queue of its own.
    """
    if not isinstance(competition, dict):
        raise BundleRefused("competition.yaml is not a mapping (tasks.py, unpack_competition)")
    if str(competition.get("version", "1")) != "2":
        raise BundleRefused("competition.yaml must say version: 2 (tasks.py, unpack_competition picks V2Unpacker)")
    _known("competition.yaml", competition, COMPETITION_KEYS, "V2Unpacker.__init__")
    _check_files(competition, root)
    tasks = _check_tasks(competition, root)
    _check_solutions(competition, tasks, root)
    queue = competition.get("queue")
    if queue is not None:
        check_queue(queue)
    _check_phases(competition, tasks, root, None if queue else max_execution_time_limit)
    _check_leaderboards(competition)


def check_queue(queue: object) -> None:
    """A queue is named by its vhost, a UUID (queues/models.py, Queue.vhost; base_unpacker.py, _unpack_queue)."""
    try:
        uuid.UUID(str(queue))
    except ValueError:
        raise BundleRefused(
            f"queue {queue!r} is not a UUID: Codabench finds a queue by its vhost, the UUID shown on the "
            "server's Queues page (queues/models.py, Queue.vhost; base_unpacker.py, _unpack_queue)"
        ) from None


def _known(where: str, item: object, keys: frozenset[str], reader: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise BundleRefused(f"{where} must be a mapping ({reader})")
    unread = sorted(set(item) - keys)
    if unread:
        raise BundleRefused(f"{where} sets {', '.join(unread)}, which Codabench never reads ({reader}): remove it")
    return item


def _exists(root: Path | None, name: object, what: str, rule: str) -> None:
    """base_unpacker.py, _get_data_key (and v2.py's page, terms and image readers): the file is there."""
    if root is None:
        return
    if not isinstance(name, str) or not name:
        raise BundleRefused(f"{what} names no file ({rule})")
    path = root / name
    if not path.exists():
        try:
            uuid.UUID(name)  # an existing dataset's key, which only the server can check
        except ValueError:
            raise BundleRefused(f"{what} {name!r} is not in the bundle ({rule})") from None


def _non_empty(root: Path | None, name: object, what: str, rule: str) -> None:
    _exists(root, name, what, rule)
    if root is not None and not (root / str(name)).read_text().strip():
        raise BundleRefused(f"{what} {name!r} is empty, it must contain content ({rule})")


def _check_files(competition: dict[str, Any], root: Path | None) -> None:
    pages = competition.get("pages")
    if not isinstance(pages, list):
        raise BundleRefused("competition.yaml has no list of pages (v2.py, _unpack_pages)")
    for index, page in enumerate(pages):
        _known(f"page {index}", page, PAGE_KEYS, "v2.py, _unpack_pages")
        _non_empty(root, page.get("file"), "page", "v2.py, _unpack_pages")
    if "terms" not in competition:
        raise BundleRefused("competition.yaml names no terms file (v2.py, _unpack_terms)")
    _non_empty(root, competition["terms"], "terms", "v2.py, _unpack_terms")
    if "image" not in competition:
        raise BundleRefused("competition.yaml names no image (base_unpacker.py, _unpack_image)")
    _exists(root, competition["image"], "image", "base_unpacker.py, _read_image")


def _check_tasks(competition: dict[str, Any], root: Path | None) -> set[Any]:
    if not competition.get("tasks"):
        raise BundleRefused("no tasks listed in this competition (v2.py, _unpack_tasks)")
    indexes: set[Any] = set()
    for task in competition["tasks"]:
        _known(
            f"task {task.get('name') if isinstance(task, dict) else task!r}", task, TASK_KEYS, "v2.py, _unpack_tasks"
        )
        if "index" not in task:
            raise BundleRefused(f"task {task.get('name')!r} has no index (v2.py, _unpack_tasks)")
        if task["index"] in indexes:
            raise BundleRefused(f"duplicate task index {task['index']} (v2.py, _unpack_tasks)")
        indexes.add(task["index"])
        if "key" in task:
            continue
        if "scoring_program" not in task:
            raise BundleRefused(
                f"task {task.get('name') or task['index']!r} has no scoring program (v2.py, _unpack_tasks)"
            )
        for key in DATA_KEYS:
            if key in task:
                _exists(root, task[key], f"task {task['index']}'s {key}", "base_unpacker.py, _get_data_key")
    return indexes


def _check_solutions(competition: dict[str, Any], tasks: set[Any], root: Path | None) -> None:
    indexes: set[Any] = set()
    for solution in competition.get("solutions") or []:
        name = solution.get("name") if isinstance(solution, dict) else solution
        _known(f"solution {name!r}", solution, SOLUTION_KEYS, "v2.py, _unpack_solutions")
        if "index" not in solution:
            raise BundleRefused(f"solution {name!r} has no index (v2.py, _unpack_solutions)")
        if "tasks" not in solution:
            raise BundleRefused(f"solution {name!r} lists no tasks (v2.py, _unpack_solutions)")
        if not all(index in tasks for index in solution["tasks"]):
            raise BundleRefused(
                f"solution {name!r} points to a task index that does not exist (v2.py, _unpack_solutions)"
            )
        if solution["index"] in indexes:
            raise BundleRefused(f"duplicate solution index {solution['index']} (v2.py, _unpack_solutions)")
        indexes.add(solution["index"])
        if "key" not in solution:
            if "path" not in solution:
                raise BundleRefused(f"solution {name!r} is missing 'path' (v2.py, _unpack_solutions)")
            _exists(root, solution["path"], f"solution {name!r}'s path", "base_unpacker.py, _get_data_key")


def _when(value: object, what: str) -> datetime.datetime | None:
    """unpackers/utils.py, get_datetime: a date is midnight that day; a string is parsed."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time())
    try:
        return datetime.datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        raise BundleRefused(f"{what} {value!r} is not a date (unpackers/utils.py, get_datetime)") from None


def _check_phases(competition: dict[str, Any], tasks: set[Any], root: Path | None, cap: int | None) -> None:
    phases = competition.get("phases")
    if not phases:
        raise BundleRefused("Competitions must have at least one phase (serializers/competitions.py, validate_phases)")
    ordered = sorted(phases, key=lambda p: p.get("index", 0) if isinstance(p, dict) else 0)  # v2.py, _unpack_phases
    spans = []
    for position, phase in enumerate(ordered):
        name = phase.get("name", position) if isinstance(phase, dict) else position
        _known(f"phase {name}", phase, PHASE_KEYS, "v2.py, _unpack_phases")
        if not phase.get("tasks"):
            raise BundleRefused(
                f"phase {name} has no task: phases must contain at least one task (v2.py, _unpack_phases)"
            )
        if not all(index in tasks for index in phase["tasks"]):
            raise BundleRefused(
                f"phase {name} names a task index that does not exist (base_unpacker.py, _save_competition)"
            )
        start = _when(phase.get("start"), f"phase {name}'s start")
        if start is None:
            raise BundleRefused(f"phase {name} has no start (base_unpacker.py, _get_current_phase compares it)")
        spans.append((name, start, _when(phase.get("end"), f"phase {name}'s end")))
        if position == 0 and phase.get("auto_migrate_to_this_phase"):
            raise BundleRefused(
                "you cannot auto migrate to the first phase (serializers/competitions.py, validate_phases)"
            )
        for key in ("public_data", "starting_kit"):
            if key in phase:
                _exists(root, phase[key], f"phase {name}'s {key}", "base_unpacker.py, _get_data_key")
        limit = phase.get("execution_time_limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0):
            raise BundleRefused(f"phase {name}'s execution_time_limit must be a positive whole number of seconds")
        if cap is not None and (limit or 0) > cap:
            raise BundleRefused(
                f"phase {name}'s execution_time_limit of {limit} s is over the {cap} s that Codabench allows "
                "a competition without a queue of its own (tasks.py, _send_to_compute_worker, "
                "MAX_EXECUTION_TIME_LIMIT): set up a queue of compute workers and pass --queue VHOST_UUID"
            )
        for key in ("max_submissions_per_day", "max_submissions"):
            value = phase.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise BundleRefused(f"phase {name}'s {key} must be a whole number (competitions/models.py, Phase)")
    # base_unpacker.py, _validate_phase_ordering
    for (first, _, first_end), (second, second_start, _) in zip(spans, spans[1:], strict=False):
        if first_end is None:
            raise BundleRefused(
                f"phase {first} must have an end time because it has a phase after it "
                "(base_unpacker.py, _validate_phase_ordering)"
            )
        if second_start < first_end:
            raise BundleRefused(
                f"phases must be sequential: phase {second} starts before phase {first} has ended; "
                "it must start strictly after (base_unpacker.py, _validate_phase_ordering)"
            )
        if second_start == first_end:
            raise BundleRefused(
                f"Phases dates conflict: phase {second} starts the instant phase {first} ends; it must start "
                "strictly after (base_unpacker.py, _validate_phase_ordering)"
            )


def _check_leaderboards(competition: dict[str, Any]) -> None:
    boards = competition.get("leaderboards")
    if not boards:
        raise BundleRefused(
            "could not find leaderboards (v2.py, _unpack_leaderboards; PhaseSerializer.validate_leaderboard)"
        )
    for board in boards:
        title = board.get("title") if isinstance(board, dict) else board
        _known(f"leaderboard {title!r}", board, LEADERBOARD_KEYS, "serializers/leaderboards.py, LeaderboardSerializer")
        for key, most in (("title", LEADERBOARD_TITLE_CHARS), ("key", LEADERBOARD_KEY_CHARS)):
            _text(board.get(key), f"leaderboard {title!r}'s {key}", most, "leaderboards/models.py, Leaderboard")
        rule = board.get("submission_rule", ADD)
        if rule not in SUBMISSION_RULES:
            raise BundleRefused(
                f"leaderboard {title!r}'s submission_rule {rule!r} is not one of {', '.join(SUBMISSION_RULES)} "
                "(leaderboards/models.py, Leaderboard.SUBMISSION_RULES)"
            )
        _check_columns(board.get("columns"), title, board.get("primary_index", 0))


def _text(value: object, what: str, most: int, rule: str) -> None:
    if not isinstance(value, str) or not value:
        raise BundleRefused(f"{what} is required ({rule})")
    if len(value) > most:
        raise BundleRefused(f"{what} {value!r} is {len(value)} characters, over the {most} allowed ({rule})")


def _check_columns(columns: object, board: object, primary: object) -> None:
    """serializers/leaderboards.py, LeaderboardSerializer.validate_columns and ColumnSerializer.validate."""
    rule = "serializers/leaderboards.py, validate_columns"
    if not isinstance(columns, list) or not columns:
        raise BundleRefused(f"leaderboard {board!r} needs at least 1 column ({rule})")
    for column in columns:
        _known(f"a column of {board!r}", column, COLUMN_KEYS, "serializers/leaderboards.py, ColumnSerializer")
        _text(column.get("title"), "a column's title", COLUMN_TITLE_CHARS, "leaderboards/models.py, Column")
        _text(column.get("key"), "a column's key", COLUMN_KEY_CHARS, "leaderboards/models.py, Column")
        index = column.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise BundleRefused(
                f"column {column['key']!r} needs an index, a whole number (leaderboards/models.py, Column)"
            )
        if column.get("sorting", "desc") not in SORTING:
            raise BundleRefused(
                f"column {column['key']!r}'s sorting must be desc or asc (leaderboards/models.py, Column)"
            )
        computation, over = column.get("computation"), column.get("computation_indexes")
        if computation is not None and computation not in COMPUTATIONS:
            raise BundleRefused(f"column {column['key']!r}'s computation must be one of {', '.join(COMPUTATIONS)}")
        if (computation is None) != (not over):
            raise BundleRefused(
                f"column {column['key']!r}: a computation needs computation_indexes and the reverse "
                "(serializers/leaderboards.py, ColumnSerializer.validate)"
            )
    indexes = [column["index"] for column in columns]
    if len(set(indexes)) != len(columns):
        raise BundleRefused(f"columns must have unique indexes ({rule})")
    if len({column["key"] for column in columns}) != len(columns):
        raise BundleRefused(f"columns must have unique keys ({rule})")
    for column in columns:
        for index in (
            str(column.get("computation_indexes") or "").split(",") if column.get("computation_indexes") else []
        ):
            if not index.strip().isdigit() or int(index) not in indexes or int(index) == column["index"]:
                raise BundleRefused(f"column {column['key']!r}'s computation_indexes point to no other column ({rule})")
    if primary not in indexes:
        raise BundleRefused(
            f"leaderboard {board!r}'s primary_index {primary} is no column's index "
            "(serializers/leaderboards.py, LeaderboardPhaseSerializer.get_submissions)"
        )
