#!/usr/bin/env python3
"""md2man.py: build the vgpumig(1) man page from the CLI chapters in docs/cli-*.md.

The markdown chapters are the one source of truth for every verb and every --json
field; this turns the small subset of markdown they use (headings, paragraphs, bullet
lists, fenced or indented code, pipe tables, `code` and **bold**) into roff.

    docs/md2man.py docs/cli-device.md ... > docs/vgpumig.1
    docs/md2man.py --check docs/vgpumig.1 docs/cli-*.md   # exit 1 if out of date
"""
import re
import sys

HEAD = r""".TH VGPUMIG 1 "2026" "vgpumig 0.1.0" "vgpumig manual"
.SH NAME
vgpumig \- live-migrate virtual machines that carry NVIDIA vGPUs between libvirt hosts
.SH SYNOPSIS
.B vgpumig
.RB [ \-\-json ]
.RB [ \-\-socket
.IR PATH ]
.RB [ \-\-sysfs\-root
.IR PATH ]
.I VERB
.RI [ ARGS ...]
.SH DESCRIPTION
vgpumig is the operator's command of the vgpumig system. Inventory and XML verbs work
offline through the library; every other verb asks the local agent
.BR vgpumigd ,
which owns the host's vGPUs, its claims and its migrations.
Global options may appear anywhere on the command line:
.TP
.B \-\-json
print machine-readable JSON on stdout instead of text.
.TP
.BI \-\-socket " PATH"
the local agent's unix socket (default /run/vgpumig/vgpumigd.sock).
.TP
.BI \-\-sysfs\-root " PATH"
root under which /sys and /proc are read (default $VGPUMIG_SYSFS_ROOT, else /).
.SH EXIT STATUS
0 success; 1 refused or failed, with one line "vgpumig: reason" on stderr; 2 usage error.
"""

TAIL = r""".SH SEE ALSO
.BR vgpumigd (8),
.BR vgpu\-sysfs\-emu (1),
.BR virsh (1),
.BR mdevctl (8).
The operator documents in docs/ (vgpumigd.md, vgpumig-hook.md, state.md, model.md, lab.md).
"""


def esc(text):
    text = text.replace("\\", "\\\\").replace("-", "\\-")
    return text


def inline(text):
    out = []
    for part in re.split(r"(`[^`]*`|\*\*[^*]+\*\*)", text):
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append("\\fB" + esc(part[1:-1]) + "\\fR")
        elif part.startswith("**"):
            out.append("\\fB" + esc(part[2:-2]) + "\\fR")
        else:
            out.append(esc(part))
    line = "".join(out)
    if line.startswith(".") or line.startswith("'"):
        line = "\\&" + line
    return line


def code_block(lines):
    return [".PP", ".nf", ".RS 4"] + ["\\&" + esc(l) for l in lines] + [".RE", ".fi"]


def table(rows):
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    cells = [r for r in cells if not all(re.fullmatch(r":?-+:?", c) for c in r)]
    out = []
    for r in cells[1:]:
        out += [".TP", inline(r[0]), inline(" | ".join(r[1:]))]
    return out


def convert(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    out, i = [], 0
    while i < len(lines):
        l = lines[i]
        if l.startswith("# "):
            out += [".SH " + esc(l[2:].upper())]
        elif l.startswith("## ") or l.startswith("### "):
            out += [".SS " + inline(l.split(" ", 1)[1])]
        elif l.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out += code_block(lines[i + 1:j])
            i = j
        elif l.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            block = [x[4:] for x in lines[i:j]]
            while block and not block[-1].strip():
                block.pop()
            out += code_block(block)
            i = j
            continue
        elif l.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            out += table(lines[i:j])
            i = j
            continue
        elif re.match(r"^\s*[-*] ", l):
            item = [re.sub(r"^\s*[-*] ", "", l)]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip() \
                    and not re.match(r"^\s*[-*] ", lines[i]):
                item.append(lines[i].strip())
                i += 1
            out += [".IP \\(bu 2", inline(" ".join(item))]
            continue
        elif l.strip():
            para = [l.strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and not re.match(r"^(#|```|\||\s*[-*] )", lines[i]):
                para.append(lines[i].strip())
                i += 1
            out += [".PP", inline(" ".join(para))]
            continue
        i += 1
    return out


def render(paths):
    body = []
    for p in paths:
        body += convert(p)
    return HEAD + "\n".join(body) + "\n" + TAIL


def main(argv):
    if argv and argv[0] == "--check":
        want = render(argv[2:])
        have = open(argv[1], encoding="utf-8").read()
        if want != have:
            print(f"{argv[1]} is out of date; run: docs/md2man.py {' '.join(argv[2:])} > {argv[1]}")
            return 1
        return 0
    sys.stdout.write(render(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
