#!/usr/bin/env python3
"""A strict parser for the Prometheus text exposition format (0.0.4).

Stricter than Prometheus itself, so that what passes here passes promtool
and every scraper:
  - every sample belongs to a family announced by "# HELP" and "# TYPE",
    both given once and before the family's first sample;
  - a family's samples are contiguous (no coming back to it later);
  - metric and label names follow the grammar, label values use only the
    escapes \\\\ \\" \\n, no label name repeats, no sample repeats;
  - counters are named *_total and are finite and >= 0;
  - a histogram has, per label set, buckets with increasing "le" bounds,
    cumulative (non-decreasing) counts, a last bucket le="+Inf" equal to
    _count, and a _sum.

Usage:
  promparse.py FILE|-            parse; print the samples as JSON
                                 {"name": [{"labels": {...}, "value": v}, ...]}
                                 exit 1 with "line N: why" on the first error
  promparse.py --self-test       check that the parser rejects broken inputs
"""
import json
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


class ParseError(Exception):
    pass


def parse_value(text, lineno):
    """A sample value as Go's ParseFloat reads it, plus the special values."""
    special = {"+Inf": math.inf, "Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if text in special:
        return special[text]
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise ParseError(f"line {lineno}: bad value {text!r}")
    return float(text)


def parse_labels(line, pos, lineno):
    """Parses {a="x",b="y"} starting at line[pos] == '{'. Returns (dict, new pos)."""
    labels = {}
    pos += 1
    while True:
        if pos < len(line) and line[pos] == "}":
            return labels, pos + 1
        m = LABEL.match(line, pos)
        if not m:
            raise ParseError(f"line {lineno}: bad label name at column {pos + 1}")
        name = m.group(0)
        if name.startswith("__"):
            raise ParseError(f"line {lineno}: reserved label name {name!r}")
        if name in labels:
            raise ParseError(f"line {lineno}: label {name!r} repeated")
        pos = m.end()
        if line[pos:pos + 2] != '="':
            raise ParseError(f"line {lineno}: expected =\" after label {name!r}")
        pos += 2
        value = []
        while True:
            if pos >= len(line):
                raise ParseError(f"line {lineno}: unterminated value of label {name!r}")
            c = line[pos]
            if c == "\\":
                esc = line[pos + 1:pos + 2]
                if esc not in ("\\", '"', "n"):
                    raise ParseError(f"line {lineno}: bad escape \\{esc} in label {name!r}")
                value.append("\n" if esc == "n" else esc)
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                raise ParseError(f"line {lineno}: raw newline in label {name!r}")
            else:
                value.append(c)
                pos += 1
        labels[name] = "".join(value)
        if pos < len(line) and line[pos] == ",":
            pos += 1
        elif pos >= len(line) or line[pos] != "}":
            raise ParseError(f"line {lineno}: expected , or }} after label {name!r}")


def family_of(name, types):
    """The declared family a sample name belongs to, or None."""
    if name in types:
        return name
    for suffix in HIST_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return None


def check_histograms(samples, types):
    for fam, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for s in samples.get(fam + "_bucket", []):
            labels = dict(s["labels"])
            if "le" not in labels:
                raise ParseError(f"{fam}_bucket sample without le: {s['labels']}")
            le = labels.pop("le")
            key = tuple(sorted(labels.items()))
            series.setdefault(key, []).append((parse_value(le, 0), s["value"], le))
        counts = {tuple(sorted(s["labels"].items())): s["value"]
                  for s in samples.get(fam + "_count", [])}
        sums = {tuple(sorted(s["labels"].items())) for s in samples.get(fam + "_sum", [])}
        if set(series) != set(counts) or set(series) != sums:
            raise ParseError(f"{fam}: _bucket, _sum and _count label sets differ")
        for key, buckets in series.items():
            for (le0, c0, _), (le1, c1, _) in zip(buckets, buckets[1:]):
                if not le1 > le0:
                    raise ParseError(f"{fam}{dict(key)}: le bounds not increasing ({le0}, {le1})")
                if c1 < c0:
                    raise ParseError(f"{fam}{dict(key)}: buckets not cumulative ({c0} then {c1})")
            if buckets[-1][2] != "+Inf":
                raise ParseError(f"{fam}{dict(key)}: last bucket is not le=\"+Inf\"")
            if buckets[-1][1] != counts[key]:
                raise ParseError(f"{fam}{dict(key)}: +Inf bucket {buckets[-1][1]} != _count "
                                 f"{counts[key]}")


def parse(text):
    """Parses exposition text. Returns {name: [{"labels":..., "value":...}]} or raises."""
    types, helps, samples = {}, {}, {}
    seen, done_families = set(), set()
    current = None
    if text and not text.endswith("\n"):
        raise ParseError("the last line does not end with a newline")
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    raise ParseError(f"line {lineno}: bad metric name {name!r}")
                if name in done_families or name == current:
                    raise ParseError(f"line {lineno}: {parts[1]} for {name} after its samples")
                table = helps if parts[1] == "HELP" else types
                if name in table:
                    raise ParseError(f"line {lineno}: second {parts[1]} for {name}")
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ParseError(f"line {lineno}: bad TYPE line")
                    if parts[3] == "counter" and not name.endswith("_total"):
                        raise ParseError(f"line {lineno}: counter {name} does not end in _total")
                table[name] = parts[3] if len(parts) == 4 else ""
            continue
        m = NAME.match(line)
        if not m:
            raise ParseError(f"line {lineno}: bad metric name")
        name, pos = m.group(0), m.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = parse_labels(line, pos, lineno)
        if line[pos:pos + 1] != " ":
            raise ParseError(f"line {lineno}: expected a space before the value")
        fields = line[pos + 1:].split(" ")
        if len(fields) not in (1, 2) or (len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1])):
            raise ParseError(f"line {lineno}: expected 'value [timestamp]'")
        value = parse_value(fields[0], lineno)
        fam = family_of(name, types)
        if fam is None:
            raise ParseError(f"line {lineno}: sample {name} has no # TYPE before it")
        if fam not in helps:
            raise ParseError(f"line {lineno}: sample {name} has no # HELP before it")
        if fam != current:
            if fam in done_families:
                raise ParseError(f"line {lineno}: samples of {fam} are not contiguous")
            if current is not None:
                done_families.add(current)
            current = fam
        kind = types[fam]
        if kind == "counter" and not (value >= 0 and math.isfinite(value)):
            raise ParseError(f"line {lineno}: counter {name} has value {fields[0]}")
        if kind == "histogram" and name == fam:
            raise ParseError(f"line {lineno}: histogram sample {name} without _bucket/_sum/_count")
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ParseError(f"line {lineno}: duplicate sample {name}{labels}")
        seen.add(key)
        samples.setdefault(name, []).append({"labels": labels, "value": value})
    check_histograms(samples, types)
    return samples


BAD = {
    "no TYPE": "# HELP a_total x\na_total 1\n",
    "no HELP": "# TYPE a_total counter\na_total 1\n",
    "counter without _total": "# HELP a x\n# TYPE a counter\na 1\n",
    "negative counter": "# HELP a_total x\n# TYPE a_total counter\na_total -1\n",
    "TYPE after samples": "# HELP a x\na 1\n# TYPE a gauge\n",
    "bad label name": '# HELP a x\n# TYPE a gauge\na{1x="y"} 1\n',
    "bad escape": '# HELP a x\n# TYPE a gauge\na{x="\\t"} 1\n',
    "unterminated label": '# HELP a x\n# TYPE a gauge\na{x="y} 1\n',
    "repeated label": '# HELP a x\n# TYPE a gauge\na{x="1",x="2"} 1\n',
    "duplicate sample": "# HELP a x\n# TYPE a gauge\na 1\na 2\n",
    "bad value": "# HELP a x\n# TYPE a gauge\na one\n",
    "not contiguous": "# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\n"
                      'a{x="1"} 1\nb 1\na{x="2"} 1\n',
    "no final newline": "# HELP a x\n# TYPE a gauge\na 1",
    "histogram not cumulative": "# HELP h x\n# TYPE h histogram\n"
                                'h_bucket{le="1"} 5\nh_bucket{le="+Inf"} 3\nh_sum 1\nh_count 3\n',
    "histogram without +Inf": "# HELP h x\n# TYPE h histogram\n"
                              'h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    "+Inf != _count": "# HELP h x\n# TYPE h histogram\n"
                      'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
    "le not increasing": "# HELP h x\n# TYPE h histogram\n"
                         'h_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\n'
                         "h_sum 1\nh_count 1\n",
    "histogram without _sum": "# HELP h x\n# TYPE h histogram\n"
                              'h_bucket{le="+Inf"} 1\nh_count 1\n',
}

GOOD = ("# HELP a_total x y z\n# TYPE a_total counter\n"
        'a_total{l="q\\"uote\\\\ \\n é"} 3\n'
        "# HELP h x\n# TYPE h histogram\n"
        'h_bucket{m="1",le="0.5"} 1\nh_bucket{m="1",le="1"} 1\nh_bucket{m="1",le="+Inf"} 2\n'
        'h_sum{m="1"} 1.5e0\nh_count{m="1"} 2\n'
        "# HELP g x\n# TYPE g gauge\ng -Inf\n")


def self_test():
    ok = True
    for what, text in BAD.items():
        try:
            parse(text)
            print(f"not rejected: {what}")
            ok = False
        except ParseError:
            pass
    try:
        s = parse(GOOD)
        assert s["a_total"][0]["labels"]["l"] == 'q"uote\\ \n é'
    except (ParseError, AssertionError, KeyError) as e:
        print(f"valid text rejected: {e}")
        ok = False
    print("promparse self-test:", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "--self-test":
        return self_test()
    data = sys.stdin.buffer.read() if sys.argv[1] == "-" else open(sys.argv[1], "rb").read()
    try:
        samples = parse(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        print(f"not UTF-8: {e}", file=sys.stderr)
        return 1
    except ParseError as e:
        print(e, file=sys.stderr)
        return 1
    json.dump(samples, sys.stdout, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
