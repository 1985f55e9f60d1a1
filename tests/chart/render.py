"""Renders charts/dovetail as `helm template --include-crds` does, for the
install end-to-end test (host/dovetail/tests/install.rs): Helm's own engine
from helm-python-sdk, in the virtualenv tests/chart/run sets up.

    render.py --release dovetail --namespace dovetail --values values.yaml [--values more.yaml]

Values files are merged in order, later ones winning, as `helm -f a -f b` does.
"""

import argparse
import pathlib
import sys

import helm_python as helm
import yaml

CHART = pathlib.Path(__file__).resolve().parents[2] / "charts" / "dovetail"


def merged(a, b):
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--values", action="append", default=[])
    args = parser.parse_args()
    values = {}
    for path in args.values:
        values = merged(values, yaml.safe_load(pathlib.Path(path).read_text()) or {})
    chart = helm.Chart.load(str(CHART))
    out = []
    for crd in chart.crds:
        out.append(f"# Source: {crd['name']}\n{crd['data'].strip()}\n")
    rendered = chart.render(values=values, name=args.release, namespace=args.namespace)
    for path in sorted(rendered):
        text = rendered[path].strip()
        if path.endswith("NOTES.txt") or not text:
            continue
        out.append(f"# Source: {path}\n{text}\n")
    sys.stdout.write("---\n".join(out))


if __name__ == "__main__":
    main()
