"""Where the documentation site lives: the one place the package knows its address.

Errors a newcomer is likely to meet end with a link to the page that explains them
(`docs_link`, `see`; call them with literal arguments: a test checks that each page
and heading they name exists under ``docs/``).
"""

from __future__ import annotations

#: The documentation site (mkdocs, directory URLs: ``docs/concepts/stages.md`` is
#: ``concepts/stages/``).
DOCS_URL = "https://cgarciae.github.io/pypeln/"


def docs_link(page: str, anchor: str = "") -> str:
    """The address of a page of the site, and of one of its headings if `anchor` is given.

    >>> docs_link("concepts/processes", "the-main-guard")
    'https://cgarciae.github.io/pypeln/concepts/processes/#the-main-guard'
    >>> docs_link("concepts/workers")
    'https://cgarciae.github.io/pypeln/concepts/workers/'
    """
    url = f"{DOCS_URL}{page.strip('/')}/"
    return f"{url}#{anchor}" if anchor else url


def see(page: str, anchor: str = "") -> str:
    """The closing sentence of an error message: where to read more."""
    return f"See {docs_link(page, anchor)}"
