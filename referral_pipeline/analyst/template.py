"""The HTML report's Jinja2 template: one self-contained page (inline CSS and SVG, no scripts, no
external assets), autoescaped."""

REPORT_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Referral program report{% if as_of %} — {{ as_of }}{% endif %}</title>
<style>
  :root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #2f6fed; --ok: #2e7d32; --bad: #c62828; --warn: #ef6c00; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--ink);
         margin: 0 auto; max-width: 1100px; padding: 24px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  h2 { font-size: 17px; margin: 32px 0 6px; padding-top: 12px; border-top: 1px solid var(--line); }
  .meta, .note, .source { color: var(--muted); font-size: 12px; }
  .note { margin: 6px 0; }
  .cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
  .card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 140px; }
  .card .v { font-size: 20px; font-weight: 600; }
  .card .l { color: var(--muted); font-size: 12px; }
  table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { background: #f5f7fa; font-weight: 600; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  .bars { margin: 8px 0 4px; }
  .bar-row { display: grid; grid-template-columns: 220px 1fr 110px; align-items: center; gap: 8px; margin: 3px 0; }
  .bar-track { background: #f0f2f5; border-radius: 3px; height: 14px; }
  .bar { background: var(--accent); height: 14px; border-radius: 3px; min-width: 1px; }
  .bar.reject, .bar.failed { background: var(--bad); }
  .bar.hold, .bar.on_hold { background: var(--warn); }
  .bar.issued, .bar.approved, .bar.passed { background: var(--ok); }
  .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
  svg { display: block; margin: 8px 0; max-width: 100%; height: auto; }
  nav a { margin-right: 12px; color: var(--accent); text-decoration: none; font-size: 13px; }
</style>
</head>
<body>
<h1>Referral program report</h1>
<div class="meta">as of {{ as_of or "now" }} · generated {{ generated_at }}{% if run_id %} · run {{ run_id }}{% endif %} · database {{ database }}</div>
<nav>{% for s in sections %}<a href="#{{ s.id }}">{{ s.title }}</a>{% endfor %}</nav>

{% if cards %}<div class="cards">{% for c in cards %}
  <div class="card"><div class="v">{{ c.value }}</div><div class="l">{{ c.label }}</div></div>{% endfor %}
</div>{% endif %}

{% for s in sections %}
<section id="{{ s.id }}">
<h2>{{ s.title }}</h2>
{% if s.source %}<div class="source">source: {{ s.source }}</div>{% endif %}
{% if s.note %}<p class="note">{{ s.note }}</p>{% endif %}
{% if s.svg %}{{ s.svg }}{% endif %}
{% if s.bars %}<div class="bars">{% for b in s.bars %}
  <div class="bar-row"><div class="label" title="{{ b.label }}">{{ b.label }}</div>
    <div class="bar-track"><div class="bar {{ b.css }}" style="width: {{ '%.1f' % b.pct }}%"></div></div>
    <div class="n">{{ b.text }}</div></div>{% endfor %}
</div>{% endif %}
{% if s.rows %}<table>
  <thead><tr>{% for c in s.columns %}<th{% if c.numeric %} class="n"{% endif %}>{{ c.name }}</th>{% endfor %}</tr></thead>
  <tbody>{% for r in s.rows %}<tr>{% for v in r %}<td{% if s.columns[loop.index0].numeric %} class="n"{% endif %}>{{ v }}</td>{% endfor %}</tr>
  {% endfor %}</tbody>
</table>{% endif %}
</section>
{% endfor %}
</body>
</html>
"""
