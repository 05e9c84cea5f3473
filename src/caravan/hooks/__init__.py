"""Local git hooks that tell the caravan server about new commits, so nothing ever polls.

``install.install_hooks(repo, url)`` writes the hooks into a repository; each one runs
``python -m caravan.hooks.notify``, which posts the change to ``URL/api/hooks/git``. This
package's import stays light: a hook starts a Python process on every commit.
"""
