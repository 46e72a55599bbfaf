"""The plan as one self-contained HTML page: no network, inline CSS and JS only.

The summary per target and what needs a person come first (blocked targets,
rejected rows, a checklist of manual, conflict and failed items), then every item
with its why and `from → to`, filterable by target, operation and free text.
The filter can be preset from the URL: `report.html#target=dir&op=update&q=ada`.
Every value from a source or target is HTML-escaped, and the page's
Content-Security-Policy allows only its own script (by hash), so a hostile
value such as `<script>` is shown, never run.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

from ..model import OPS, Plan, PlanItem
from .common import ORPHAN_HEADER, attention_items, blocked_targets, orphan_rows, value_text

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:0 16px 48px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:20px 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;
padding-bottom:4px}
.meta{color:#5b6474;margin:0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:5px 8px;border-bottom:1px solid #e7eaf0}
th{background:#f4f6f9;font-weight:600;position:sticky;top:0}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.alert{background:#fdecec;border-left:4px solid #c62828;padding:8px 12px;margin:8px 0}
.warn{background:#fff6e0;border-left:4px solid #e0a100;padding:8px 12px;margin:8px 0}
.op{display:inline-block;min-width:62px;text-align:center;border-radius:3px;padding:0 6px;font-size:12px;
font-weight:600;color:#fff}
.op-create{background:#2e7d32}.op-update{background:#b26a00}.op-disable{background:#c62828}
.op-enable{background:#00838f}.op-manual{background:#8e24aa}.op-conflict{background:#4a148c}
ul.changes{margin:0;padding:0;list-style:none}
ul.changes code{color:#37474f}
del{color:#b71c1c;text-decoration:none;background:#fdecec;padding:0 2px}
ins{color:#1b5e20;text-decoration:none;background:#e8f5e9;padding:0 2px}
.checklist{list-style:none;padding:0}.checklist li{padding:4px 0;border-bottom:1px solid #f0f2f5}
.checklist input{margin-right:8px}
.why{color:#3d4555}.error{color:#b71c1c}
.filters{position:sticky;top:0;background:#fff;padding:8px 0;display:flex;gap:12px;align-items:center;
flex-wrap:wrap;z-index:1}
.filters input[type=search]{min-width:260px;padding:4px 6px}
.filters select{padding:3px}
a.count{color:inherit}\nins,del{white-space:pre-wrap}td.id{white-space:nowrap}\nsummary{cursor:pointer;color:#1f4f99;margin:4px 0}
@media print{.filters{display:none}tr.item[hidden]{display:table-row}}
"""

# Reads the filter from the URL (query or #fragment), applies it to the rows,
# and keeps the fragment in step so a filtered view can be linked.
_SCRIPT = """
(function(){
var rows=Array.prototype.slice.call(document.querySelectorAll('tr.item'));
var texts=rows.map(function(r){return r.textContent.toLowerCase();});
var target=document.getElementById('f-target'),op=document.getElementById('f-op'),
    q=document.getElementById('f-q'),shown=document.getElementById('shown');
function fromUrl(){
  var p=new URLSearchParams(location.search),h=new URLSearchParams(location.hash.slice(1));
  h.forEach(function(v,k){p.set(k,v);});
  target.value=p.get('target')||'';op.value=p.get('op')||'';q.value=p.get('q')||'';
  if(target.selectedIndex<0)target.value='';if(op.selectedIndex<0)op.value='';
}
function apply(){
  var t=target.value,o=op.value,s=q.value.trim().toLowerCase(),n=0;
  for(var i=0;i<rows.length;i++){
    var r=rows[i],ok=(!t||r.getAttribute('data-target')===t)&&(!o||r.getAttribute('data-op')===o)
      &&(!s||texts[i].indexOf(s)>=0);
    r.hidden=!ok;if(ok)n++;
  }
  shown.textContent=String(n);
}
function toUrl(){
  var p=new URLSearchParams();
  if(target.value)p.set('target',target.value);if(op.value)p.set('op',op.value);
  if(q.value.trim())p.set('q',q.value.trim());
  history.replaceState(null,'',location.pathname+location.search+(p.toString()?'#'+p.toString():''));
}
[target,op].forEach(function(e){e.addEventListener('change',function(){apply();toUrl();});});
q.addEventListener('input',function(){apply();toUrl();});
window.addEventListener('hashchange',function(){fromUrl();apply();});
document.getElementById('filters').addEventListener('submit',function(e){e.preventDefault();});
var plan=document.body.getAttribute('data-plan');
document.querySelectorAll('.checklist input[type=checkbox]').forEach(function(box){
  var key='provisioner:'+plan+':'+box.value;
  try{box.checked=localStorage.getItem(key)==='1';}catch(e){}
  box.addEventListener('change',function(){try{localStorage.setItem(key,box.checked?'1':'0');}catch(e){}});
});
fromUrl();apply();
})();
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_CSP = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'; img-src data:"


def e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def plan_html(plan: Plan) -> str:
    title = f"Plan {plan.plan_id}"
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{e(title)} · provisioner</title><style>{_STYLE}</style></head>",
        f'<body data-plan="{e(plan.plan_id)}">',
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">created {e(plan.created_at)} · status <b>{e(plan.status)}</b> · source: '
        f"{plan.identities} identities, {len(plan.rejected)} rows rejected · "
        f"{len(plan.items)} items</p>",
        f'<p class="meta">apply with: <code>provisioner apply {e(plan.plan_id)}</code>'
        + (" (blocked targets only with <code>--allow-mass-change</code>)" if plan.status == "blocked" else "")
        + "</p>",
    ]
    parts += _summary(plan)
    parts += _attention(plan)
    parts += _items(plan)
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "\n".join(parts)


def _attention(plan: Plan) -> list[str]:
    out: list[str] = []
    blocked = blocked_targets(plan)
    rejected = plan.rejected
    unmatched = plan.source_info.get("unmatched", ())
    attention = attention_items(plan)
    orphans = orphan_rows(plan)
    if not (blocked or rejected or unmatched or attention or orphans):
        return out
    out.append('<section id="attention"><h2>Needs attention</h2>')
    for name, reason in blocked.items():
        out.append(f'<div class="alert"><b>Target {e(name)} is BLOCKED</b> by the safety policy: '
                   f"{e(reason)}</div>")
    if rejected:
        out.append(f'<div class="warn"><b>{len(rejected)} source row(s) rejected</b>: these people '
                   "are neither created nor changed until the row is fixed.</div>")
        out.append(_fold(len(rejected), "rejected rows",
                         _table(["row", "key", "reason"], [[r.row, r.key, r.reason] for r in rejected],
                                "rejected")))
    if unmatched:
        out.append(f'<div class="warn"><b>{len(unmatched)} record(s)</b> only a secondary source has '
                   "(reported, not provisioned).</div>")
        out.append(_fold(len(unmatched), "records",
                         _table(["row", "key", "reason"], [[u["row"], u["key"], u["reason"]] for u in unmatched],
                                "unmatched")))
    if orphans:
        out.append(f'<div class="warn"><b>{len(orphans)} account(s) match nobody</b> in the source '
                   "(orphans; policy.unmanaged).</div>")
        out.append(_fold(len(orphans), "orphan accounts", _table(ORPHAN_HEADER, orphans, "orphans")))
    if attention:
        lines = []
        for item in attention:
            lines.append(f'<li><label><input type="checkbox" value="{e(item.id)}">'
                         f"{_op(item.op)} <b>{e(item.target)}</b> {e(item.identity or '')}"
                         f"{' account ' + e(item.account_id) if item.account_id else ''} — "
                         f'<span class="why">{e(item.reason)}</span>'
                         f"{_error(item)}</label></li>")
        out.append(f"<h3>Checklist: {len(attention)} item(s) a person must act on</h3>")
        out.append(_fold(len(attention), "items",
                         '<ul class="checklist" id="checklist">' + "".join(lines) + "</ul>"))
    out.append("</section>")
    return out


def _summary(plan: Plan) -> list[str]:
    head = "".join(f'<th class="n">{e(h)}</th>' for h in ("accounts", *OPS, "unmanaged"))
    out = ['<section id="summary"><h2>Summary per target</h2>',
           f'<table id="summary-table"><thead><tr><th>target</th>{head}<th>blocked</th></tr></thead><tbody>']
    for name, s in plan.targets.items():
        cells = [f'<td class="n">{s.accounts}</td>']
        for op in OPS:
            n = s.counts.get(op, 0)
            cells.append(f'<td class="n" data-op="{op}">'
                         + (f'<a class="count" href="#target={e(name)}&amp;op={op}">{n}</a>' if n else "0")
                         + "</td>")
        cells.append(f'<td class="n">{s.unmanaged}</td>')
        blocked = f"<b>BLOCKED</b>: {e(s.block_reason)}" if s.blocked else "no"
        out.append(f'<tr data-target="{e(name)}"><th>{e(name)}</th>{"".join(cells)}<td>{blocked}</td></tr>')
    out.append("</tbody></table></section>")
    return out


def _items(plan: Plan) -> list[str]:
    targets = "".join(f'<option value="{e(n)}">{e(n)}</option>' for n in plan.targets)
    present = [op for op in OPS if any(i.op == op for i in plan.items)]
    ops = "".join(f'<option value="{op}">{op}</option>' for op in present)
    out = ['<section id="items"><h2>Items</h2>',
           '<form class="filters" id="filters" role="search">'
           f'<label>target <select id="f-target"><option value="">all</option>{targets}</select></label>'
           f'<label>operation <select id="f-op"><option value="">all</option>{ops}</select></label>'
           '<input type="search" id="f-q" placeholder="filter: name, e-mail, attribute, reason…">'
           f'<span><b id="shown">{len(plan.items)}</b> of {len(plan.items)} items shown</span></form>',
           '<table id="item-table"><thead><tr><th>op</th><th>target</th><th>identity</th><th>account</th>'
           "<th>why</th><th>from → to</th><th>status</th></tr></thead><tbody>"]
    out += [_item_row(item) for item in plan.items]
    out.append("</tbody></table></section>")
    return out


def _item_row(item: PlanItem) -> str:
    changes = "".join(
        f"<li><code>{e(path)}</code>: <del>{e(value_text(c.before))}</del> → <ins>{e(value_text(c.after))}</ins></li>"
        for path, c in item.changes.items())
    return (f'<tr class="item" data-target="{e(item.target)}" data-op="{e(item.op)}" id="item-{e(item.id)}">'
            f'<td>{_op(item.op)}</td><td>{e(item.target)}</td><td class="id">{e(item.identity or "")}</td>'
            f'<td class="id">{e(item.account_id or "")}</td><td class="why">{e(item.reason)}</td>'
            f'<td><ul class="changes">{changes}</ul></td><td>{e(item.status)}{_error(item)}</td></tr>')


def _op(op: str) -> str:
    return f'<span class="op op-{e(op)}">{e(op)}</span>'


def _error(item: PlanItem) -> str:
    return f'<div class="error">{e(item.error)}</div>' if item.error else ""


# longer lists start folded, so the items below stay within reach
_OPEN_UP_TO = 25


def _fold(count: int, what: str, body: str) -> str:
    return (f"<details{' open' if count <= _OPEN_UP_TO else ''}><summary>show all {count} {what}</summary>"
            f"{body}</details>")


def _table(header: list[str], rows: list[list], table_id: str) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
