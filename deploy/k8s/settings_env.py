"""Every variable the manifests give the platform's containers is a real setting.

A container of the image runs one module (``python -m services.gateway``, ``libs.common.db.migrate``,
``deploy.provision``); the variables that module reads are those of its pydantic-settings classes
(each field's ``validation_alias``, or its ``env_prefix`` + name, nested settings included) and the
OpenTelemetry SDK's ``OTEL_*`` variables.  A variable in a container's ``env`` that is none of these
is a typo or a leftover, which the service would silently ignore, unless another variable of the
same container refers to it as ``$(NAME)`` (``PG_PASSWORD``, ``NATS_PASSWORD``, ``POD_NAME``).  A key
of a ConfigMap loaded with ``envFrom`` must be a setting of at least one container that loads it.
Containers of other images (the OpenTelemetry Collector) are not checked.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache
from typing import Any

from opentelemetry.sdk import environment_variables as otel_env
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from deploy.k8s.checks import ENV_REF
from deploy.k8s.resources import Resource, containers, ident
from libs.common.settings import ServiceSettings

# Modules of the image that are not services, and the settings classes they read.
TOOLS: dict[str, tuple[str, ...]] = {
    "libs.common.db.migrate": ("libs.common.settings:DatabaseSettings",),
    "deploy.provision": ("deploy.provision:ProvisionerSettings", "services.executor.settings:ExecutorSettings"),
}


def env_names(cls: type[BaseSettings]) -> set[str]:
    """Every variable ``cls`` reads: its fields (inherited ones too) and those of nested settings."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        annotation = field.annotation
        if inspect.isclass(annotation) and issubclass(annotation, BaseSettings):
            names |= env_names(annotation)
            continue
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names |= {a for a in alias.choices if isinstance(a, str)}
        else:
            names.add((prefix + name).upper())
    return names


def _load(path: str) -> type[BaseSettings]:
    module, _, name = path.partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert inspect.isclass(cls) and issubclass(cls, BaseSettings), path
    return cls


def _service_settings(service: str) -> list[type[BaseSettings]]:
    module = importlib.import_module(f"services.{service}.settings")
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, ServiceSettings)
        and obj is not ServiceSettings
        and obj.__module__ == module.__name__
    ]


@cache
def settings_of(module: str) -> frozenset[str] | None:
    """The variables ``python -m module`` reads; None for a module of another image or unknown to us."""
    if module in TOOLS:
        classes = [_load(path) for path in TOOLS[module]]
    elif module.startswith("services.") and module.count(".") == 1:
        try:
            classes = _service_settings(module.split(".")[1])
        except ModuleNotFoundError:
            return None
    else:
        return None
    names: set[str] = {value for key, value in vars(otel_env).items() if key.startswith("OTEL_")}
    for cls in classes:
        names |= env_names(cls)
    return frozenset(names)


def module_of(container: dict[str, Any]) -> str | None:
    """``X`` of a container whose command is ``python -m X``."""
    command = [str(x) for x in container.get("command") or []]
    if len(command) >= 3 and command[0].startswith("python") and command[1] == "-m":
        return command[2]
    return None


def check_settings(resources: list[Resource]) -> list[str]:
    problems: list[str] = []
    loaders: dict[str, set[str]] = {}  # ConfigMap -> the settings of every checked container that loads it
    for _, where, c in containers(resources):
        module = module_of(c)
        known = settings_of(module) if module else None
        if module is None or known is None:
            continue
        env = c.get("env") or []
        referenced = {ref for var in env for ref in ENV_REF.findall(str(var.get("value", "")))}
        problems.extend(
            f"{where}: env {var.get('name')} is not a setting of python -m {module} "
            "(nor referred to by another variable)"
            for var in env
            if var.get("name") not in known and var.get("name") not in referenced
        )
        for src in c.get("envFrom") or []:
            name = (src.get("configMapRef") or {}).get("name")
            if name:
                loaders.setdefault(str(name), set()).update(known)
    for res in resources:
        name = str((res.get("metadata") or {}).get("name"))
        if res.get("kind") != "ConfigMap" or name not in loaders:
            continue
        problems.extend(
            f"{ident(res)}: {key} is not a setting of any container that loads it"
            for key in (res.get("data") or {})
            if key not in loaders[name]
        )
    return problems
