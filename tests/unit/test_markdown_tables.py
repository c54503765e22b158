"""Markdown tables without their empty rows and columns (parsers/markdown_tables.py)."""

from __future__ import annotations

from rag_ingest.parsers.markdown_tables import is_label, without_empty_rows_and_columns


def test_empty_rows_and_columns_are_left_out_the_rest_as_written() -> None:
    text = (
        "Before\n"
        "| | Name |  | Total |\n"
        "|---|:---|---|---:|\n"
        "| | a |  | 1 |\n"
        "|  |  |  |  |\n"
        "| | b |  | 2 |\n"
        "After | not a table\n"
    )
    assert without_empty_rows_and_columns(text) == (
        "Before\n| Name | Total |\n|:---|---:|\n| a | 1 |\n| b | 2 |\nAfter | not a table\n"
    )


def test_a_column_named_or_filled_once_is_kept_and_a_table_of_nothing_is_left_out() -> None:
    named = "|A|B|\n|---|---|\n|1||\n"
    assert without_empty_rows_and_columns(named) == named  # B is named
    filled = "|||\n|---|---|\n||x|\n"
    assert without_empty_rows_and_columns(filled) == "||\n|---|\n|x|\n"
    assert without_empty_rows_and_columns("x\n| | |\n|---|---|\n| | |\ny") == "x\ny"


def test_a_table_whose_rows_differ_in_cells_is_left_as_written() -> None:
    # A "|" in a cell (PyMuPDF does not escape it): which column is which is unknown.
    text = "|A||\n|---|---|\n|a||x|\n"
    assert without_empty_rows_and_columns(text) == text  # "x" kept
    assert without_empty_rows_and_columns("no table") == "no table"
    # An escaped one is a cell's text.
    escaped = "|A||B|\n|---|---|---|\n|x\\|||y|\n"
    assert without_empty_rows_and_columns(escaped) == "|A|B|\n|---|---|\n|x\\||y|\n"


def test_a_label_is_one_short_line_with_a_letter_or_digit() -> None:
    assert is_label(" France ") and is_label("2023") and is_label("x" * 40)
    assert not is_label("x" * 41) and not is_label("two\nlines")
    assert not is_label(":.,") and not is_label("  ")  # a scan's specks; nothing
