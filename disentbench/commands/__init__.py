"""Sub-commands of the ``disentbench`` CLI; one module each, discovered by :mod:`disentbench.cli`."""
