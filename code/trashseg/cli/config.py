"""`trashseg config`: what the kit finds and what a run would be made of, before anything runs.

trashseg config list                       models (code/*/config.yaml) and presets (configs/*.yaml)
trashseg config show --exp cpu-lite [...]  every setting of that run and where its value came from
trashseg config variables                  the variables (options, Make variables) and what they do
"""

from __future__ import annotations

import argparse

from trashseg.cli import options
from trashseg.errors import friendly_errors


@friendly_errors
def config(argv: list[str]) -> None:
    p = argparse.ArgumentParser(
        prog="trashseg config",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("list", help="models and presets")
    show = sub.add_parser("show", help="a run's resolved settings, each with its source")
    options.add(show, "MODEL", "EXP", *options.RUN_SETTINGS)
    options.add_sets(show)
    sub.add_parser("keys", help="every settings key, its default and its description (the schema's)")
    names = sub.add_parser("variables", help="every variable: its option, what it does, its default")
    names.add_argument("--names", action="store_true", help="only the names (the Makefile reads them)")
    if argv[:1] == ["show"]:
        args = argparse.Namespace(what="show", **vars(options.parse(show, argv[1:])))
    else:
        args = p.parse_args(argv)
    if args.what == "list":
        from trashseg import registry

        print("models (MODEL=, a folder code/<Arch>/ whose config.yaml names it):")
        for m in registry.models().values():
            print(f"  {m.name:<20} {m.config.relative_to(m.folder.parent.parent)}")
        print("presets (EXP=, configs/<name>.yaml over the model its base: names):")
        for e in registry.presets().values():
            print(f"  {e.name:<20} base {e.base}")
    elif args.what == "keys":
        from trashseg.settings import describe

        for key, default, text in describe():
            print(f"{key + ':':<32} {default:<40} # {text}")
    elif args.what == "variables":
        if args.names:
            print(" ".join(options.VARS))
            return
        for v in options.VARS.values():
            default = f" (default {v.default})" if v.default is not None else ""
            keys = f" [{', '.join(v.keys)}]" if v.keys else ""
            print(f"  {v.name:<17} {v.option:<19} {v.help}{default}{keys}")
    else:
        from trashseg.config import explained

        sources: dict = {}
        cfg = options.config(args, explain=sources)
        print(explained(cfg, sources), end="")
