#!/usr/bin/env python3
"""Where xdelta3 copies from the old image, in terms of an EdgeUpdater delta's operations.

    scripts/bench/xdelta3-copies.py <edgeupdater delta> <xdelta3 printdelta output>

Walks the delta's ops sections (docs/delta-format.md) to label every range of the new image as copy,
literal, block (rebuilt), zeros or xor, then sums the bytes of xdelta3's source copies (`CPY ... S@`
in `xdelta3 printdelta` output of a delta between the same images, or between their data areas) by
the label of the range each copy starts in. Used for the fast-size analysis in docs/benchmarks.md.
Needs the zstd CLI (ops sections are zstd frames).
"""
import bisect
import re
import struct
import subprocess
import sys


def varint(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def operation_ranges(path):
    data = open(path, "rb").read()
    body = struct.unpack_from("<I", data, 10)[0]
    pos = 14 + body + 8
    ranges, target = [], 0
    while pos < len(data):
        kind, encoding = data[pos], data[pos + 1]
        stored = struct.unpack_from("<I", data, pos + 2)[0]
        payload = data[pos + 18:pos + 18 + stored]
        pos += 18 + stored
        if kind == 0x7F:
            break
        if kind != 1:
            continue  # content and metadata sections write nothing by themselves here
        if encoding == 1:
            payload = subprocess.run(["zstd", "-d", "-c"], input=payload, capture_output=True, check=True).stdout
        i = 0
        while i < len(payload):
            code = payload[i]
            i += 1
            if code == 1:
                _, i = varint(payload, i)
                length, i = varint(payload, i)
                label = "copy"
            elif code == 2:
                length, i = varint(payload, i)
                i += length
                label = "literal"
            elif code == 3:
                i += 1
                _, i = varint(payload, i)
                length, i = varint(payload, i)
                i += 4
                label = "block"
            elif code == 4:
                length, i = varint(payload, i)
                label = "zeros"
            elif code == 5:
                _, i = varint(payload, i)
                length, i = varint(payload, i)
                i += length
                label = "xor"
            else:
                sys.exit(f"unknown op code {code}")
            ranges.append((target, label))
            target += length
    return ranges


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ranges = operation_ranges(sys.argv[1])
    starts = [start for start, _ in ranges]
    copied = {}
    for line in open(sys.argv[2]):
        match = re.match(r"\s+(\d+) \d+\s+(.*)$", line)
        if not match or "CPY" not in line:
            continue
        offset = int(match.group(1))  # printdelta's offsets count from the start of the target
        for kind, size, space in re.findall(r"(ADD|CPY_\d+|RUN)\s+(\d+)(?:\s+([ST])@\d+)?", match.group(2)):
            if kind.startswith("CPY") and space == "S":
                label = ranges[bisect.bisect_right(starts, offset) - 1][1]
                copied[label] = copied.get(label, 0) + int(size)
            offset += int(size)
    for label, size in sorted(copied.items()):
        print(f"{label:8} {size:12,d} bytes of xdelta3 source copies start in EdgeUpdater {label} ranges")


main()
