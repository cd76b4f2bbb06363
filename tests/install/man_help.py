#!/usr/bin/env python3
"""The man page against --help, so that the two cannot drift.

usage: man_help.py TIMBER MANPAGE

MANPAGE is the page as built (src/cli/timber.1.in with the version filled
in).  For the top level (`timber --help` against SYNOPSIS and OPTIONS) and
for every command that `timber --help` lists (`timber CMD --help` against
the page's COMMANDS subsection of that name):
  - the usage lines are the page's synopsis lines, the same and in order;
  - the options are the page's options, the same set, each written the same
    way (`--gamma G[,G...]`, `-q, --quiet`);
  - each option's text on the page starts with the words of its --help text.
`timber help` is checked against the overview's `help [COMMAND]` line.  The
page's .TH names `timber --version`'s version, and groff formats it without
a warning; `man -l` shows it when man is installed.  Prints
"N passed, M failed" and exits 1 on any failure.
"""
import re
import shutil
import subprocess
import sys

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what, file=sys.stderr)
    return cond


def words(text):
    return " ".join(text.split())


def parse_help(text):
    """(usage lines, {option term: description}, [command lines])."""
    usage, options, commands = [], {}, []
    section, term = None, None
    for line in text.splitlines():
        if line.startswith("usage: "):
            usage.append(words(line[len("usage: "):]))
            section = "usage"
            continue
        if section == "usage" and line.startswith("       ") and line.strip():
            usage.append(words(line))
            continue
        if line and not line.startswith(" "):
            section = line[:-1] if line.endswith(":") else "text"
            term = None
            continue
        if section == "options":
            m = re.match(r"^  (-\S.*?)(?: {2,}(.*))?$", line)
            if m:
                term = words(m.group(1))
                options[term] = m.group(2) or ""
            elif line.strip() and term:
                options[term] += " " + line.strip()
        elif section == "commands":
            m = re.match(r"^  (\S.*?)(?: {2,}(.*))?$", line)
            if m:
                commands.append(words(m.group(1)))
    return usage, {k: words(v) for k, v in options.items()}, commands


def plain(roff):
    """Roff text without font changes and escapes, as man shows it."""
    s = re.sub(r"\\f[BIRP]", "", roff)
    s = s.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")
    return s


def parse_man(text):
    """{section key: {"synopsis": [...], "options": {term: desc}}}; the
    key is "" for the top level (SYNOPSIS, OPTIONS) and the command name
    for a COMMANDS subsection."""
    sections = {}
    sh, key = None, None
    lines = [l for l in text.splitlines() if not l.startswith('.\\"')]
    i = 0

    def entry(k):
        return sections.setdefault(k, {"synopsis": [], "options": {}})

    while i < len(lines):
        line = lines[i]
        if line.startswith(".SH "):
            sh = line[4:].strip().strip('"')
            key = "" if sh in ("SYNOPSIS", "OPTIONS") else None
        elif line.startswith(".SS ") and sh == "COMMANDS":
            key = line[4:].strip().strip('"')
            entry(key)
        elif line == ".nf" and key is not None and not entry(key)["synopsis"] \
                and sh in ("SYNOPSIS", "COMMANDS"):
            i += 1
            while i < len(lines) and lines[i] != ".fi":
                entry(key)["synopsis"].append(words(plain(lines[i])))
                i += 1
        elif line == ".TP" and key is not None and sh in ("OPTIONS", "COMMANDS"):
            term = words(plain(lines[i + 1]))
            i += 2
            desc = []
            while i < len(lines) and not re.match(r"^\.(TP|PP|SS|SH|P|LP)\b",
                                                  lines[i]):
                if not lines[i].startswith("."):
                    desc.append(plain(lines[i]))
                i += 1
            entry(key)["options"][term] = words(" ".join(desc))
            continue
        i += 1
    return sections


def compare(label, help_usage, help_opts, man):
    check(man is not None, f"{label}: no section in the man page")
    if man is None:
        return
    check(man["synopsis"] == help_usage,
          f"{label}: usage {help_usage} but the man page's synopsis is "
          f"{man['synopsis']}")
    only_help = sorted(set(help_opts) - set(man["options"]))
    only_man = sorted(set(man["options"]) - set(help_opts))
    check(not only_help, f"{label}: in --help, not in the man page: {only_help}")
    check(not only_man, f"{label}: in the man page, not in --help: {only_man}")
    for term, desc in help_opts.items():
        if term in man["options"]:
            check(man["options"][term].startswith(desc),
                  f"{label}: {term}: the man page says "
                  f"'{man['options'][term]}', --help says '{desc}'")


def run(timber, *args):
    r = subprocess.run([timber, *args], capture_output=True, text=True)
    check(r.returncode == 0 and r.stderr == "",
          f"timber {' '.join(args)}: exit {r.returncode}, stderr {r.stderr!r}")
    return r.stdout


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    timber, page = sys.argv[1], sys.argv[2]
    with open(page, encoding="utf-8") as f:
        source = f.read()
    man = parse_man(source)

    usage, options, commands = parse_help(run(timber, "--help"))
    check(len(usage) >= 1 and len(options) >= 2 and len(commands) >= 5,
          f"could not read timber --help ({usage}, {options}, {commands})")
    compare("timber --help", usage, options, man.get(""))

    names = list(dict.fromkeys(c.split()[0] for c in commands))
    man_names = [k for k in man if k]
    check(names == man_names,
          f"commands: --help lists {names}, the man page {man_names}")
    for name in names:
        if name == "help":
            # `timber help --help` is the overview; the command's own line
            # is in the overview's command list.
            lines = ["timber " + c for c in commands if c.split()[0] == name]
            compare("timber help", lines, {}, man.get(name))
            continue
        cu, co, _ = parse_help(run(timber, name, "--help"))
        check(len(cu) >= 1, f"timber {name} --help has no usage line")
        compare(f"timber {name} --help", cu, co, man.get(name))

    version = run(timber, "--version").strip().split()[-1]
    th = re.search(r'^\.TH TIMBER 1 "[^"]*" "timber ([^"]*)"', source, re.M)
    check(th and th.group(1) == version,
          f".TH says {th.group(1) if th else None}, timber --version {version}")

    if check(shutil.which("groff") is not None, "groff is not installed"):
        r = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", page],
                           capture_output=True, text=True)
        check(r.returncode == 0 and r.stderr == "",
              f"groff warns about the man page: {r.stderr.strip()}")
    if shutil.which("man"):
        r = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                           env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin",
                                "LC_ALL": "C.UTF-8", "MANPAGER": "cat",
                                "PAGER": "cat"})
        shown = r.stdout
        check(r.returncode == 0 and "NAME" in shown and "--gamma" in shown
              and f"timber {version}" in shown,
              f"man -l {page}: exit {r.returncode}: {r.stderr.strip()}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
