"""A contact CSV read within bounds: line by line, each row with the line it starts on, its phone in E.164.

Whatever the file holds, memory stays bounded: a line is read up to MAX_LINE bytes, a file up to
MAX_ROWS rows of at most MAX_COLUMNS named columns, and a value past MAX_VALUE characters rejects its
row. A file that breaks a bound, is not UTF-8 or holds a NUL is refused with the line where it does.
"""

import csv
import functools
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import phonenumbers

PHONE_HEADERS = ("phone", "phone_number", "number", "mobile", "msisdn")
NAME_HEADERS = ("name", "full_name")
ZONE_HEADERS = ("time_zone", "timezone", "tz")  # optional: the recipient's IANA zone, else the number's
BATCH = 1000  # rows judged and written together: one IN (…) lookup, one INSERT, under SQLite's parameter limit
MAX_ROWS = 100_000
MAX_COLUMNS = 50
MAX_VALUE = 1000  # characters in one cell
MAX_LINE = 64 * 1024  # bytes in one physical line
PHONE_SHOWN = 40  # characters of a rejected phone repeated in reports
UTF8_HINT = "Save it as 'CSV UTF-8' and upload it again."


class ImportRefused(Exception):
    """The file as a whole cannot be imported (no phone column, not UTF-8, too large, finished campaign)."""


@dataclass(frozen=True)
class RowError:
    line: int
    phone: str
    reason: str


@dataclass
class Row:
    """One data row as read: its first line, the phone as typed and in E.164 ("" if invalid)."""

    line: int
    raw_phone: str
    phone: str
    name: str
    variables: dict
    problem: str = ""  # set when the row's shape already rejects it (a value too long)
    time_zone: str = ""  # as the file named it


@dataclass
class Header:
    columns: list[str]
    phone_at: int
    name_at: int | None
    zone_at: int | None
    extra: list[tuple[int, str]]  # the other named columns, which become variables

    @property
    def variables(self) -> list[str]:
        return [name for _, name in self.extra]

    @property
    def guessed(self) -> dict[str, str]:
        """The columns read by a name other than their own ("mobile" read as the phone), for the preview to say."""
        found = {"phone": self.phone_at, "name": self.name_at, "time_zone": self.zone_at}
        return {role: self.columns[at] for role, at in found.items() if at is not None and normal(self.columns[at]) != role}


class Lines:
    """The physical lines of a binary file as text, each refused if not UTF-8, holding a NUL or too long."""

    def __init__(self, stream):
        self.stream = stream
        self.bytes_read = 0

    def __iter__(self) -> Iterator[str]:
        for number in itertools.count(1):
            raw = self.stream.readline(MAX_LINE + 1)
            if not raw:
                return
            self.bytes_read += len(raw)
            if len(raw) > MAX_LINE:
                raise ImportRefused(f"Line {number} is longer than {MAX_LINE // 1024} kB: is this a CSV file, "
                                    "one row per line?")
            if b"\0" in raw:
                raise ImportRefused(f"Line {number} holds a NUL byte: this is not a text file. {UTF8_HINT}")
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ImportRefused(f"Line {number} is not UTF-8 text (byte {exc.start + 1} of the line). "
                                    f"{UTF8_HINT}") from None


def normal(header: str) -> str:
    return header.strip().lower().replace(" ", "_")


def pick(headers: list[str], candidates: tuple[str, ...]) -> int | None:
    names = [normal(h) for h in headers]
    return next((names.index(c) for c in candidates if c in names), None)


@functools.lru_cache(maxsize=4096)  # a file that repeats its rows parses each number once
def normalise(raw: str, region: str) -> str | None:
    """The number in E.164, or None if it is not a valid phone number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _next(reader) -> list[str] | None:
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise ImportRefused(f"Line {reader.line_num} cannot be read as CSV: {exc}.") from None


def read_header(reader) -> Header:
    headers = _next(reader)
    if headers is None:
        raise ImportRefused("The file is empty.")
    headers = [h.strip() for h in headers]
    if len(headers) > MAX_COLUMNS:
        raise ImportRefused(f"The first line names {len(headers):,} columns; a contact file may have at most "
                            f"{MAX_COLUMNS}.")
    phone_at = pick(headers, PHONE_HEADERS)
    if phone_at is None:
        raise ImportRefused(f"No phone column: the first line must name one, e.g. {', '.join(PHONE_HEADERS)}.")
    name_at = pick(headers, NAME_HEADERS)
    zone_at = pick(headers, ZONE_HEADERS)
    extra = [(i, h) for i, h in enumerate(headers) if i not in (phone_at, name_at, zone_at) and h]
    return Header(headers, phone_at, name_at, zone_at, extra)


def read_rows(reader, header: Header, region: str, *, max_rows: int | None = None) -> Iterator[Row]:
    """Every data row with the line it starts on and its phone in E.164 ("" when invalid); at most
    `max_rows` (default MAX_ROWS)."""
    max_rows = max_rows or MAX_ROWS
    line = reader.line_num + 1
    count = 0
    while (values := _next(reader)) is not None:
        # csv counts physical lines, so a quoted value spanning lines still gets its true line number.
        start, line = line, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue  # blank lines are layout, not rows
        count += 1
        if count > max_rows:
            raise ImportRefused(f"The file has more than {max_rows:,} rows (line {start}): split it into "
                                "smaller files.")
        cells = [v.strip() for v in values] + [""] * (len(header.columns) - len(values))
        raw, name = cells[header.phone_at], cells[header.name_at] if header.name_at is not None else ""
        if any(len(v) > MAX_VALUE for v in cells):
            yield Row(start, raw[:PHONE_SHOWN], "", "", {}, f"a value longer than {MAX_VALUE:,} characters")
        else:
            yield Row(start, raw, (normalise(raw, region) or "") if raw else "", name,
                      {h: cells[i] for i, h in header.extra if cells[i]},
                      time_zone=cells[header.zone_at] if header.zone_at is not None else "")


class FileChecks:
    """Rejects rows for what the file alone shows: a bad shape, no or an invalid phone, a repeat."""

    def __init__(self):
        self.first_line: dict[str, int] = {}

    def keep(self, rows: list[Row], errors: list[RowError]) -> list[Row]:
        """The rows that pass; the others go to `errors`."""
        kept = []
        for row in rows:
            if row.problem:
                errors.append(RowError(row.line, row.raw_phone, row.problem))
            elif not row.raw_phone:
                errors.append(RowError(row.line, "", "no phone number"))
            elif not row.phone:
                errors.append(RowError(row.line, row.raw_phone[:PHONE_SHOWN], "invalid phone number"))
            elif row.phone in self.first_line:
                errors.append(RowError(row.line, row.phone, f"duplicate of line {self.first_line[row.phone]}"))
            else:
                self.first_line[row.phone] = row.line
                kept.append(row)
        return kept


def windows(rows: Iterable[Row]) -> Iterator[list[Row]]:
    rows = iter(rows)
    while window := list(itertools.islice(rows, BATCH)):
        yield window
