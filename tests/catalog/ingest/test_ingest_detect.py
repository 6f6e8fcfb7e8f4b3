"""Recognising formats and encodings of uploaded files."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zhishe.catalog.ingest import IngestError, detect_encoding, detect_format, read_raw


def _xlsx_bytes() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["a"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": [1]}), buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "head", "expected"),
    [
        ("upload.bin", b"PAR1\x15\x04", "parquet"),
        ("data.csv", b"a,b\n1,2\n", "csv"),
        ("data.txt", b"a\tb\n1\t2\n", "tsv"),
        ("data.tsv", b"a\tb\n1\t2\n", "tsv"),
        ("data.csv", b"a\tb\tc\nx, y\t2\t3\n", "tsv"),
        ("data.csv", b"a\tb,c\n1\t2,3\n", "csv"),
        ("data", b"a,b\n1,2\n", "csv"),
        ("data.json", b'[{"a": 1}]', "json"),
        ("data.json", b'  \n[\n  {"a": 1}\n]', "json"),
        ("data.json", b'{"a": 1}', "json"),
        ("data.json", b'{"a": 1}\n{"a": 2}\n', "ndjson"),
        ("data.ndjson", b'{"a": 1}', "ndjson"),
        ("data.jsonl", b'{"a": 1}\n', "ndjson"),
        ("upload", b'{"a": 1}\n{"a": 2}\n', "ndjson"),
        ("data.csv", b"[id],name\n1,a\n", "csv"),
        ("data.csv", b'[{"a": 1}]', "json"),
        ("data.csv", "\ufeff站点,日期\n东四,2026-01-01\n".encode(), "csv"),
        ("data.csv", "站点\t日期\n东四\t2026-01-01\n".encode("gbk"), "tsv"),
    ],
)
def test_format_is_detected_by_magic_then_extension_then_sniffing(
    filename: str, head: bytes, expected: str
) -> None:
    assert detect_format(filename, head) == expected


def test_xlsx_and_parquet_are_detected_by_their_magic_bytes_whatever_the_name() -> None:
    assert detect_format("upload.dat", _xlsx_bytes()[:65536]) == "xlsx"
    assert detect_format("book.xlsx", _xlsx_bytes()[:64]) == "xlsx"
    assert detect_format("upload.csv", _parquet_bytes()) == "parquet"


@pytest.mark.parametrize(
    ("filename", "head", "code", "words"),
    [
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, "unsupported_format", ".xls"),
        ("a.zip", b"PK\x03\x04" + b"\0" * 64, "unsupported_format", "ZIP"),
        ("book.xlsx", b"a,b\n1,2\n", "unsupported_format", "not one"),
        ("data.pdf", b"%PDF-1.7", "unsupported_format", "unsupported file type"),
        ("upload", b"", "empty_file", "empty"),
    ],
)
def test_unsupported_or_unknown_files_are_refused_with_a_reason(
    filename: str, head: bytes, code: str, words: str
) -> None:
    with pytest.raises(IngestError) as caught:
        detect_format(filename, head)
    assert caught.value.code == code
    assert words in caught.value.message


def test_encodings_are_utf8_utf8_sig_or_gb18030() -> None:
    assert detect_encoding(b"plain ascii") == "utf-8"
    assert detect_encoding("站点,日期".encode()) == "utf-8"
    assert detect_encoding("\ufeff站点".encode()) == "utf-8-sig"
    assert detect_encoding("站点,日期\n东四,2026-01-01\n".encode("gbk")) == "gb18030"
    assert detect_encoding("居民信息表".encode("gb2312")) == "gb18030"
    # the four-byte GB18030 range, outside GBK
    assert detect_encoding("𠀀,名字".encode("gb18030")) == "gb18030"


def test_a_multibyte_character_cut_at_the_end_of_the_head_is_still_utf8() -> None:
    data = "居民".encode()
    assert detect_encoding(data[:-1]) == "utf-8"


def test_utf16_is_refused_asking_for_utf8() -> None:
    with pytest.raises(IngestError, match="UTF-8"):
        detect_encoding("a,b\n".encode("utf-16"))


def test_western_single_byte_text_is_not_read_as_chinese() -> None:
    text = "name,city\n" + "".join(f"Müller {i},Köln é à ç\n" for i in range(200))
    encoding = detect_encoding(text.encode("cp1252"))
    assert encoding != "gb18030"
    assert text.encode("cp1252").decode(encoding).startswith("name,city\nMüller 0,Köln")


def test_a_given_gbk_encoding_is_read_as_its_superset_and_unknown_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes("名字\n张三\n".encode("gbk"))
    assert read_raw(path, encoding="GBK").encoding == "gb18030"
    with pytest.raises(ValueError, match="unknown text encoding"):
        read_raw(path, encoding="klingon-8")
