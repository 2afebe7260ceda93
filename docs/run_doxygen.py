#!/usr/bin/env python3
"""Runs Doxygen for `ninja docs`, then checks the one kind of public name it lets through.

  run_doxygen.py DOXYGEN DOXYFILE XML_DIR

Doxyfile.in makes Doxygen fail on an undocumented class, function, field,
typedef or constant (WARN_IF_UNDOCUMENTED with WARN_AS_ERROR), but Doxygen
1.9.4, Debian bookworm's, says nothing about an undocumented enumerator. The
XML output (XML_DIR) lists every enumerator with its description, so this
reads it and fails, in Doxygen's own warning format, for each one without.
Standard library only: meson already needs python3.
"""

import glob
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET


def text_of(element):
    return "" if element is None else "".join(element.itertext()).strip()


def undocumented_enumerators(xml_dir):
    """(file, line, enum, enumerator) for each enumerator with no description."""
    found = set()
    for path in sorted(glob.glob(os.path.join(xml_dir, "*.xml"))):
        root = ET.parse(path).getroot()
        for enum in root.iter("memberdef"):
            if enum.get("kind") != "enum":
                continue
            location = enum.find("location")
            file = location.get("file", "?") if location is not None else "?"
            line = location.get("line", "0") if location is not None else "0"
            for value in enum.iter("enumvalue"):
                if text_of(value.find("briefdescription")) or text_of(value.find("detaileddescription")):
                    continue
                # The same enum appears in its namespace's and its file's XML.
                found.add((file, int(line), text_of(enum.find("qualifiedname")) or text_of(enum.find("name")),
                           text_of(value.find("name"))))
    return sorted(found)


def main():
    if len(sys.argv) != 4:
        print("usage: run_doxygen.py DOXYGEN DOXYFILE XML_DIR", file=sys.stderr)
        return 2
    doxygen, doxyfile, xml_dir = sys.argv[1:]
    # Stale XML of a renamed or removed enum would be checked as if current.
    if os.path.basename(os.path.normpath(xml_dir)) == "xml":
        shutil.rmtree(xml_dir, ignore_errors=True)
    status = subprocess.run([doxygen, doxyfile], check=False).returncode
    if not os.path.isdir(xml_dir):
        print(f"run_doxygen: Doxygen wrote no XML into {xml_dir} (GENERATE_XML in {doxyfile}?)", file=sys.stderr)
        return 1
    missing = undocumented_enumerators(xml_dir)
    for file, line, enum, value in missing:
        # STRIP_FROM_PATH leaves "forkline/x.hpp": name it from the source root.
        where = file if os.path.isabs(file) else os.path.join("include", file)
        print(f"{where}:{line}: error: Enumerator {value} of {enum} is not documented.", file=sys.stderr)
    return 1 if status != 0 or missing else 0


if __name__ == "__main__":
    sys.exit(main())
