"""Run `pulumi preview` or `pulumi up` for CI, with the policy pack, and say what happened.

    python -m scripts.pulumi_run preview --stack org/golinks/prod --policy-pack policy \\
        --comment-file preview.md --label prod
    python -m scripts.pulumi_run up --stack org/golinks/prod --policy-pack policy \\
        [--target-file targets.txt]
    python -m scripts.pulumi_run preview --stack org/golinks/prod --policy-pack policy \\
        --json-file preview.json

The CLI's output streams to the job log as it comes. Besides:
- `--comment-file` writes the pull-request comment for the preview (first line a hidden
  marker, one comment per label; scripts/pr_comment.py posts it), failed or not, so a
  refused preview (a policy violation, say) is on the pull request too;
- `--json-file` keeps the preview's JSON (for `datastore_failover targets`), and
  `--target-file` makes `up` change only the URNs listed (the failover's targeted update
  while a region is down, docs/deploy.md);
- a `[409] Conflict` from Pulumi Cloud (another update of the stack is running, or an
  interrupted one still holds the lock) is explained, with what to do about it.

Exit status: the CLI's (0 success), 2 bad usage, 127 no `pulumi` on PATH.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

from scripts.github_api import report_error

COMMENT_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CONFLICT = "[409] Conflict"


def command(args) -> list[str]:
    run = ["pulumi", args.command, "--stack", args.stack, "--non-interactive", "--color", "never"]
    for pack in args.policy_pack:
        run += ["--policy-pack", pack]
    if args.command == "preview":
        run.append("--json" if args.json_file else "--diff")
    else:
        run.append("--yes")  # non-interactive; the preview it starts with runs the policies too
        for urn in args.targets:
            run += ["--target", urn]
    return run


def run(command: list[str], json_file: Path | None) -> tuple[int, str]:
    """Run it, streaming its text to the job log; (exit status, that text without colours).
    With `json_file`, stdout (the JSON document) goes there and only stderr is streamed."""
    lines: list[str] = []
    with (
        json_file.open("w") if json_file else nullcontext(subprocess.PIPE) as stdout,
        subprocess.Popen(
            command,
            stdout=stdout,
            stderr=subprocess.PIPE if json_file else subprocess.STDOUT,
            text=True,
        ) as process,
    ):
        for line in process.stderr if json_file else process.stdout:
            sys.stdout.write(line)
            lines.append(ANSI.sub("", line))
    return process.returncode, "".join(lines)


def conflict_message(stack: str) -> str:
    return (
        f"Pulumi Cloud refused the update of {stack} with {CONFLICT}: another update of this "
        "stack is running, so this one changed nothing. Wait until it finishes (Pulumi Cloud, "
        "the stack's Activity tab), then re-run this job. If nothing is running (an earlier "
        "job was killed mid-update), follow docs/delivery.md, 'An interrupted pulumi up' "
        "(`pulumi cancel`, then pending operations)."
    )


def comment(label: str, stack: str, returncode: int, output: str) -> str:
    """Markdown for the pull request: result, summary, then the whole output (its tail if long)."""
    fence = "`" * 3
    output = output.replace(fence, "'" * 3).strip()
    summary = output[output.rfind("Resources:") :] if "Resources:" in output else ""
    result = "succeeded" if returncode == 0 else f"**failed** (exit {returncode})"
    head = [
        f"<!-- golinks:pulumi-preview:{label} -->",
        f"### Pulumi preview: {label}",
        "",
        f"`pulumi preview` of `{stack}` with this branch's code {result}.",
    ]
    if CONFLICT in output:
        head += ["", conflict_message(stack)]
    if summary:
        head += ["", fence + "text", summary.strip(), fence]
    room = COMMENT_LIMIT - sum(len(line) + 1 for line in head) - 200
    if len(output) > room:
        output = "… (the start is cut; the job log has all of it)\n" + output[-room:]
    return "\n".join(
        [
            *head,
            "",
            "<details><summary>Full output</summary>",
            "",
            fence + "text",
            output,
            fence,
            "</details>",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.pulumi_run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=("preview", "up"))
    parser.add_argument("--stack", required=True, help="<org>/golinks/<stack>")
    parser.add_argument(
        "--policy-pack", action="append", default=[], metavar="DIR", help="may be repeated"
    )
    parser.add_argument("--comment-file", type=Path, help="preview only: write the PR comment here")
    parser.add_argument("--label", help="the comment's stack name (default: the stack's last part)")
    parser.add_argument(
        "--json-file", type=Path, help="preview only: write `pulumi preview --json` here"
    )
    parser.add_argument(
        "--target-file",
        type=Path,
        help="up only: change only these URNs, one a line (a targeted update)",
    )
    args = parser.parse_args(argv)
    preview_only = [args.comment_file, args.json_file]
    if args.command != "preview" and any(preview_only):
        parser.error("--comment-file and --json-file are for preview only")
    if args.command != "up" and args.target_file:
        parser.error("--target-file is for up only")
    args.targets = []
    if args.target_file:
        try:
            args.targets = args.target_file.read_text().split()
        except OSError as exc:
            parser.error(f"--target-file: {exc}")
        if not args.targets:
            parser.error(f"--target-file {args.target_file} names no resource")
    for pack in args.policy_pack:
        if not Path(pack, "PulumiPolicy.yaml").is_file():
            parser.error(f"--policy-pack {pack}: no PulumiPolicy.yaml there")
    try:
        returncode, output = run(command(args), args.json_file)
    except FileNotFoundError:
        report_error("the Pulumi CLI is not installed (the setup action installs the pinned one)")
        return 127
    if args.comment_file:
        label = args.label or args.stack.rsplit("/", 1)[-1]
        args.comment_file.write_text(comment(label, args.stack, returncode, output))
    if returncode != 0 and CONFLICT in output:
        report_error(conflict_message(args.stack))
    elif returncode != 0:
        report_error(f"pulumi {args.command} of {args.stack} failed (exit {returncode}); see above")
    return returncode


if __name__ == "__main__":
    sys.exit(main())
