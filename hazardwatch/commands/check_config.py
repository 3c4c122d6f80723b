"""`hazardwatch check-config PLANT.yaml [POLICY.yaml]`: validate files, print every error."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from alerting.policy import load_routing
from hazardwatch.plant.loader import ConfigFileError, load_plant, load_policy
from hazardwatch.plant.model import Plant


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the plant file and the optional policy file."""
    parser.add_argument("plant", help="plant YAML file")
    parser.add_argument("policy", nargs="?", help="policy YAML file (risk and routing)")


def summary(plant: Plant) -> str:
    """One line of counts: enterprises, hazard sources, tags, rules and grades."""
    grades = Counter(source.resolved_grade for source in plant.hazard_sources)
    grade_text = ", ".join(
        f"grade {g}: {grades[g]}" if g is not None else f"not major: {grades[g]}"
        for g in sorted(grades, key=lambda g: 5 if g is None else g)
    )
    rules = sum(len(u.rules) for s in plant.hazard_sources for u in s.units)
    return (
        f"{len(plant.enterprises)} enterprises, {len(plant.hazard_sources)} hazard sources, "
        f"{len(plant.tags())} tags, {rules} rules ({grade_text})"
    )


def run(args: argparse.Namespace) -> int:
    """Print `file:line: field: message` per error and exit 1, or a summary and exit 0."""
    failed = False
    try:
        plant = load_plant(args.plant)
        print(f"{args.plant}: ok — {summary(plant)}")
    except ConfigFileError as exc:
        failed = True
        print(exc, file=sys.stderr)
    if args.policy is not None:
        try:
            load_policy(args.policy)  # the `risk:` section and the file's shape
            routing = load_routing(args.policy)  # the `routing:` section, with its own checks
            print(f"{args.policy}: ok — {len(routing.recipients)} recipients")
        except ConfigFileError as exc:
            failed = True
            print(exc, file=sys.stderr)
    return 1 if failed else 0
