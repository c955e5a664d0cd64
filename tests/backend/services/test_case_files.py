"""Which evidence files a feedback case accepts: size, type by extension and by content, names. Pure."""

from __future__ import annotations

import pytest

from backend.services.case_files import ALLOWED, AttachmentRefused, check_upload, clean_name

PDF = b"%PDF-1.7\n" + b"x" * 20


@pytest.mark.parametrize("extension", sorted(ALLOWED))
def test_every_allowed_type_is_accepted_with_its_mime_type(extension: str) -> None:
    assert check_upload(f"evidence{extension}", PDF, 1000) == (f"evidence{extension}", ALLOWED[extension])


@pytest.mark.parametrize(
    "name",
    [
        "setup.exe",
        "run.bat",
        "x.cmd",
        "a.com",
        "b.msi",
        "c.scr",
        "d.js",
        "e.vbs",
        "f.ps1",
        "g.sh",
        "h.jar",
        "i.apk",
        "j.dll",
        "noextension",
        "photo.png.exe",
        "photo.PNG.EXE",
    ],
)
def test_programs_and_unknown_types_are_refused_by_name(name: str) -> None:
    with pytest.raises(AttachmentRefused, match="forbidden_type"):
        check_upload(name, PDF, 1000)


@pytest.mark.parametrize(
    "head", [b"MZ\x90\x00", b"\x7fELF\x02", b"#!/bin/sh\n", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"]
)
def test_a_program_renamed_to_an_allowed_type_is_refused_by_content(head: bytes) -> None:
    with pytest.raises(AttachmentRefused, match="forbidden_type"):
        check_upload("invoice.pdf", head + b"\x00" * 32, 1000)


def test_size_limit_is_inclusive_and_empty_files_are_refused() -> None:
    assert check_upload("a.txt", b"x" * 1000, 1000)[1] == "text/plain"
    with pytest.raises(AttachmentRefused, match="too_large"):
        check_upload("a.txt", b"x" * 1001, 1000)
    with pytest.raises(AttachmentRefused, match="empty"):
        check_upload("a.txt", b"", 1000)


def test_names_lose_their_folders_and_bad_names_are_refused() -> None:
    assert clean_name("C:\\Users\\wang\\投诉照片.JPG") == "投诉照片.JPG"
    assert clean_name("../../etc/passwd.txt") == "passwd.txt"
    for bad in ("", "   ", "a\x00b.txt", "x" * 300 + ".txt"):
        with pytest.raises(AttachmentRefused, match="bad_name"):
            clean_name(bad)
    assert check_upload("Ảnh.JPEG", PDF, 1000) == ("Ảnh.JPEG", "image/jpeg")
