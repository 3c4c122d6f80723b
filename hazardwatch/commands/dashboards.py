"""`hazardwatch dashboards export --out DIR` and `hazardwatch dashboards push --grafana URL`.

Both build the four dashboards from the plant files given with `--plant` (default: the example
plants the committed `dashboards/json/` is built from); the plants supply tag units and limits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hazardwatch.errors import HazardwatchError

TOKEN_ENV = "GRAFANA_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the `export` and `push` sub-commands."""
    from dashboards.export import COMMITTED_PLANTS

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--plant",
        action="append",
        metavar="PLANT.yaml",
        help="plant file for tag units and limits; repeatable "
        f"(default: {' '.join(COMMITTED_PLANTS)})",
    )
    export = sub.add_parser("export", parents=[common], help="write the dashboards' JSON files")
    export.add_argument("--out", required=True, type=Path, help="output folder")
    push = sub.add_parser("push", parents=[common], help="create folder, upsert dashboards by uid")
    push.add_argument("--grafana", required=True, metavar="URL", help="e.g. http://grafana:3000")
    push.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"service-account token (or ${TOKEN_ENV})",
    )
    push.add_argument("--folder", default="hazardwatch", help="folder uid and title")


def run(args: argparse.Namespace) -> int:
    """Export or push; exit 1 with a one-line reason on a config or Grafana error."""
    from dashboards.export import COMMITTED_PLANTS, build_all, export, plant_tags, to_model

    try:
        tags = plant_tags(args.plant or COMMITTED_PLANTS)
        if args.action == "export":
            for path in export(args.out, tags):
                print(path)
            return 0
        from dashboards.push import push

        if not args.token:
            print(f"hazardwatch dashboards push: give --token or set ${TOKEN_ENV}", file=sys.stderr)
            return 1
        models = [to_model(d) for d in build_all(tags)]
        report = push(args.grafana, args.token, models, args.folder, args.folder)
    except (HazardwatchError, OSError) as exc:
        print(f"hazardwatch dashboards {args.action}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"grafana": report.grafana_version, "folder_created": report.folder_created,
                      "dashboards": report.actions}, sort_keys=True))  # fmt: skip
    return 0
