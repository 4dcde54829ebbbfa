"""Run by tests/docs/test_howto_steps.py with the hub's Python (which has every configurable the docs
name, traefik's included): every `c.Section.name = value` of the docs' configuration blocks names
a setting that exists, with a value it accepts. Prints JSON: {"settings": N, "problems": [...]}."""

import json
import re
import sys
import textwrap
from pathlib import Path

from traitlets import TraitError
from traitlets.config import Config


def configurables():
    from jupyterhub.proxy import ConfigurableHTTPProxy
    from jupyterhub_traefik_proxy.fileprovider import TraefikFileProviderProxy

    from hpchub.auth import PAMCredentialAuthenticator
    from hpchub.auth_oidc import OIDCCredentialAuthenticator
    from hpchub.credentials.service import CAService
    from hpchub.hubapp import HPCHub
    from hpchub.spawners import HPCSpawner

    found = {}
    for cls in (HPCHub, HPCSpawner, PAMCredentialAuthenticator, OIDCCredentialAuthenticator, CAService, ConfigurableHTTPProxy,
                TraefikFileProviderProxy):
        for klass in cls.mro():
            if hasattr(klass, "class_traits"):
                found.setdefault(klass.__name__, klass)
    return found


def main(pages):
    classes, problems, settings = configurables(), [], 0
    for page in pages:
        text = Path(page).read_text()
        for block in re.findall(r"^[ \t]*```python\n(.*?)^[ \t]*```", text, re.S | re.M):
            block = textwrap.dedent(block)
            if not re.search(r"^c\.\w+\.\w+", block, re.M):
                continue  # a notebook cell, not configuration
            config = Config()
            try:
                exec(compile(block, page, "exec"), {"c": config})
            except Exception as exc:  # the block itself does not run
                problems.append(f"{page}: {type(exc).__name__}: {exc}\n{block}")
                continue
            for section, values in config.items():
                cls = classes.get(section)
                if cls is None:
                    problems.append(f"{page}: c.{section}: no such configurable class")
                    continue
                traits = cls.class_traits(config=True)
                for name, value in values.items():
                    settings += 1
                    if name not in traits:
                        problems.append(f"{page}: c.{section}.{name}: no such setting")
                        continue
                    if not hasattr(traits[name], "validate"):
                        continue  # an Any trait: every value is one it accepts
                    try:
                        traits[name].validate(cls.__new__(cls), value)
                    except TraitError as exc:
                        problems.append(f"{page}: c.{section}.{name} = {value!r}: {exc}")
    print(json.dumps({"settings": settings, "problems": problems}))


if __name__ == "__main__":
    main(sys.argv[1:])
