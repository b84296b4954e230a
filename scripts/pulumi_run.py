"""Run `pulumi preview` or `pulumi up` for CI, with the policy pack, and say what happened.

    python -m scripts.pulumi_run preview --stack org/golinks/prod --policy-pack policy \\
        --comment-file preview.md --label prod
    python -m scripts.pulumi_run up --stack org/golinks/prod --policy-pack policy

The CLI's output streams to the job log as it comes. Besides:
- `--comment-file` writes the pull-request comment for the preview (first line a hidden
  marker, one comment per label; scripts/pr_comment.py posts it), failed or not, so a
  refused preview (a policy violation, say) is on the pull request too;
- a `[409] Conflict` from Pulumi Cloud (another update of the stack is running, or an
  interrupted one still holds the lock) is explained, with what to do about it.

Exit status: the CLI's (0 success), 2 bad usage, 127 no `pulumi` on PATH.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
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
        run.append("--diff")
    else:
        run.append("--yes")  # non-interactive; the preview it starts with runs the policies too
    return run


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
    args = parser.parse_args(argv)
    if args.comment_file and args.command != "preview":
        parser.error("--comment-file is for preview only")
    for pack in args.policy_pack:
        if not Path(pack, "PulumiPolicy.yaml").is_file():
            parser.error(f"--policy-pack {pack}: no PulumiPolicy.yaml there")
    lines: list[str] = []
    try:
        with subprocess.Popen(
            command(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            for line in process.stdout:
                sys.stdout.write(line)
                lines.append(ANSI.sub("", line))
        returncode = process.returncode
    except FileNotFoundError:
        report_error("the Pulumi CLI is not installed (the setup action installs the pinned one)")
        return 127
    output = "".join(lines)
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
