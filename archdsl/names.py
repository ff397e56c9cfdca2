"""Every identifier and string that generated Python takes from spec text goes through here.

Layer names become attributes of an ``nn.Module`` (`self.layer1.conv1`), network names become
class names, layer names become local variables of ``forward``, and a spec's file name lands in a
docstring. This module checks the first (the elaborator calls :func:`layer_name_problem` for each
name a spec gives) and makes the others safe: a class or variable name never shadows Python's
keywords, the generated module's imports or its runtime helpers, and text in a docstring is
escaped so that nothing a file name contains can end the string. Nothing here imports torch.
"""

from __future__ import annotations

import keyword
import re

# Names the generated module itself defines or imports (its runtime helpers are added by codegen).
MODULE_GLOBALS = frozenset({"torch", "nn", "F", "math", "contextlib", "self"})

# Attributes of torch.nn.Module (torch 2.x): a submodule with one of these names would replace
# a method or a piece of state (tests/test_hostile.py compares this list with dir(nn.Module())).
MODULE_ATTRIBUTES = frozenset({
    "T_destination", "_apply", "_backward_hooks", "_backward_pre_hooks", "_buffers", "_call_impl",
    "_compiled_call_impl", "_forward_hooks", "_forward_hooks_always_called", "_forward_hooks_with_kwargs",
    "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_get_backward_hooks", "_get_backward_pre_hooks",
    "_get_name", "_is_full_backward_hook", "_load_from_state_dict", "_load_state_dict_post_hooks",
    "_load_state_dict_pre_hooks", "_maybe_warn_non_full_backward_hook", "_modules", "_named_members",
    "_non_persistent_buffers_set", "_parameters", "_register_load_state_dict_pre_hook",
    "_register_state_dict_hook", "_replicate_for_data_parallel", "_save_to_state_dict", "_slow_forward",
    "_state_dict_hooks", "_state_dict_pre_hooks", "_version", "_wrapped_call_impl", "add_module", "apply",
    "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda", "double", "dump_patches",
    "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule",
    "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules",
    "named_parameters", "parameters", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training",
    "type", "xpu", "zero_grad",
})


def layer_name_problem(name: str) -> str | None:
    """Why `name` cannot name a layer, block instance or input in generated code, or None."""
    if keyword.iskeyword(name):
        return f"'{name}' is a Python keyword"
    if name in MODULE_ATTRIBUTES or (name.startswith("__") and name.endswith("__")):
        return f"'{name}' is an attribute of torch.nn.Module (a layer named so would replace it)"
    return None


def class_identifier(name: str, taken: frozenset | set = frozenset()) -> str:
    """`name` as a class name that is not a keyword, a builtin constant or a name in `taken`."""
    if not name.isidentifier() or not name.isascii():
        name = "Net" + re.sub(r"\W", "_", name.encode("ascii", "backslashreplace").decode())
    if keyword.iskeyword(name) or name in MODULE_GLOBALS or name in taken:
        name += "Net"
    return name


def local_identifier(name: str, taken: frozenset | set = frozenset()) -> str:
    """`name` as a local variable that shadows no keyword, import or runtime helper in `taken`."""
    name = re.sub(r"\W", "_", name)
    if not name or name[0].isdigit():
        name = "_" + name
    while keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in MODULE_GLOBALS or name in taken:
        name += "_"
    return name


def docstring_text(text: str) -> str:
    """`text` escaped for a line of a triple-quoted docstring: backslashes, quotes, line breaks and
    every other non-printable or non-ASCII character become escapes, so nothing can close it."""
    return ascii(str(text))[1:-1].replace('"', '\\"')
