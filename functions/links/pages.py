"""The pages people read about links: the directory (`/_links`, `/_links.json`) and one
link's details (`/<slug>+`).

The directory is generated from the index at publish time and served as static
files, so it always shows exactly one published version. Every value that
came from a link file is escaped: nothing in a link can inject markup.
"""

from __future__ import annotations

import json
import time
from html import escape

from .index import Index, format_time
from .model import DEFAULT_STATUS, PATH_PLACEHOLDER, Link, expand

STATUS_NAMES = {
    301: "permanent",
    302: "temporary",
    307: "temporary, keeps the method",
    308: "permanent, keeps the method",
}

_STYLE = (
    "body{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem;"
    "color:#1b1b1b}h1{font-size:1.5rem;margin:.5rem 0}a{color:#0b57d0}"
    "code,.url{font-family:ui-monospace,monospace;font-size:.9em;overflow-wrap:anywhere}"
    "small,.muted{color:#5f6368}dl{display:grid;grid-template-columns:max-content 1fr;"
    "gap:.4rem 1rem}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}"
    "input{font:inherit;width:100%;box-sizing:border-box;padding:.6rem;margin:.5rem 0 1rem;"
    "border:1px solid #999;border-radius:.4rem}table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;vertical-align:top;padding:.4rem;border-bottom:1px solid #ddd}"
    ".expired{color:#a50e0e}"
    "@media (max-width:40rem){thead{display:none}tr{display:block;padding:.5rem 0;"
    "border-bottom:1px solid #ddd}td{display:block;border:0;padding:.1rem 0}"
    "td[data-label]:before{content:attr(data-label) ': ';color:#5f6368}}"
)

#: Filters rows as you type (every word must appear), and marks links whose
#: expiry has passed since the directory was published.
_SCRIPT = (
    "const q=document.getElementById('q'),rows=[...document.querySelectorAll('tbody tr')],"
    "shown=document.getElementById('shown');"
    "function filter(){const words=q.value.toLowerCase().split(/\\s+/).filter(Boolean);let n=0;"
    "for(const r of rows){const hit=words.every(w=>r.dataset.search.includes(w));"
    "r.hidden=!hit;n+=hit}shown.textContent=n}"
    "q.addEventListener('input',filter);"
    "const now=Date.now()/1000;for(const r of rows){const e=Number(r.dataset.expires||0);"
    "if(e&&e<=now){r.querySelector('.status').textContent+=' (expired)';"
    "r.classList.add('expired')}}if(q.value)filter();"
)


def directory_json(index: Index) -> bytes:
    """`/_links.json`: every link with all its fields, sorted by slug, and the version."""
    doc = {
        "version": index.version,
        "count": index.count,
        "links": [_entry(link) for link in index.links],
    }
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()


def _entry(link: Link) -> dict:
    return {
        "slug": link.slug,
        "url": link.url,
        "template": PATH_PLACEHOLDER in link.url,
        "status": link.status,
        "expires": None if link.expires is None else format_time(link.expires),
        "forward_query": link.forward_query,
        "owner": link.owner,
        "description": link.description,
    }


def directory_page(index: Index) -> bytes:
    """`/_links`: one searchable table of every link, usable on a phone."""
    rows = "".join(_row(link) for link in index.links)
    body = (
        f"<h1>Links</h1><p class=muted>{index.count} links, published version "
        f"<code>{escape(index.version)}</code> &middot; <a href=/_links.json>JSON</a></p>"
        "<label for=q>Search</label><input id=q type=search autocomplete=off autofocus "
        "placeholder='slug, target, owner, description'>"
        f"<p class=muted><span id=shown>{index.count}</span> shown</p>"
        "<table><thead><tr><th>Link<th>Target<th>Status<th>Owner<th>Description<th>Expires"
        f"</thead><tbody>{rows}</tbody></table><script>{_SCRIPT}</script>"
    )
    return _document("Links", body).encode()


def _row(link: Link) -> str:
    search = " ".join(
        filter(None, (link.slug, link.url, link.owner, link.description, str(link.status)))
    ).lower()
    expires = "" if link.expires is None else format_time(link.expires)
    slug = escape(link.slug)
    return (
        f"<tr data-search='{escape(search)}' data-expires={link.expires or 0}>"
        f"<td><a href='/{slug}'>{slug}</a> <a href='/{slug}+' title=details>&#9432;</a>"
        f"<td data-label=Target class=url>{_target(link.url)}"
        f"<td data-label=Status class=status>{link.status}"
        f"<td data-label=Owner>{_owner(link.owner)}"
        f"<td data-label=Description>{escape(link.description or '')}"
        f"<td data-label=Expires>{escape(expires)}</tr>"
    )


def details_page(link: Link, version: str | None, rest: str | None, now: float | None = None):
    """`/<slug>+`: what a link does, without following it. `rest` is the request's
    path after the slug when it came through a templated link."""
    now = time.time() if now is None else now
    expired = link.expires is not None and link.expires <= now
    status = f"{link.status} ({STATUS_NAMES[link.status]})"
    if link.status == DEFAULT_STATUS:
        status += ", the default"
    if expired:
        status += " &mdash; <strong class=expired>expired: answers 410 Gone</strong>"
    items = [("Short link", f"<a href='/{escape(link.slug)}'>go/{escape(link.slug)}</a>")]
    if PATH_PLACEHOLDER in link.url:
        items.append(("Template", f"<span class=url>{escape(link.url)}</span>"))
        if rest:
            target = expand(link.url, rest)
            items.append(("This request goes to", _target(target)))
        items.append(
            ("How it works", "the rest of the path after the link replaces {path}, encoded")
        )
    else:
        items.append(("Target", _target(link.url)))
    items += [
        ("Status", status),
        ("Expires", "never" if link.expires is None else escape(format_time(link.expires))),
        ("Forwards the query", "yes" if link.forward_query else "no"),
        ("Owner", _owner(link.owner) or "<span class=muted>nobody yet</span>"),
        ("Description", escape(link.description or "") or "<span class=muted>none</span>"),
        ("Published version", f"<code>{escape(version or 'unknown')}</code>"),
    ]
    rows = "".join(f"<dt>{name}<dd>{value}" for name, value in items)
    body = f"<h1>go/{escape(link.slug)}</h1><dl>{rows}</dl><p><a href=/_links>All links</a></p>"
    return _document(f"go/{link.slug}", body)


def _target(url: str) -> str:
    text = escape(url)
    if PATH_PLACEHOLDER in url:
        return f"<span class=url>{text}</span>"
    return f"<a class=url href='{text}' rel=noreferrer>{text}</a>"


def _owner(owner: str | None) -> str:
    if not owner:
        return ""
    if "@" in owner:
        return f"<a href='mailto:{escape(owner)}'>{escape(owner)}</a>"
    return escape(owner)


def _document(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style><body>{body}</html>"
    )
