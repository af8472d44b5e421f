"""``python -m scoring.record > scoring/score.schema.json``: the schema the shipped file must equal."""

from scoring.record.schema import schema_text

print(schema_text(), end="")
