//! The self-contained HTML page of a [`Report`]: inline CSS, per-layer error
//! plots as inline SVG, sortable tables with a few lines of inline JS. No
//! external assets.

use std::fmt::Write;

use crate::report::{NodeReport, Report, Status};
use crate::third::Side;

impl Report {
    /// The report as a self-contained HTML page (inline CSS, SVG and JS).
    pub fn to_html(&self) -> String {
        render(self)
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn colour(s: Status) -> &'static str {
    match s {
        Status::Pass => "#2e9d4a",
        Status::Fail => "#d7263d",
        Status::Unsupported => "#9a9a9a",
        Status::Host => "#5b7db1",
        Status::Error => "#f08c00",
    }
}

fn fmt_f(v: f64) -> String {
    if v >= f64::MAX { "inf".into() } else { format!("{v:.3e}") }
}

fn fmt_u(v: u64) -> String {
    if v == u64::MAX { "inf".into() } else { v.to_string() }
}

/// One panel of the per-layer plot: log10 of a metric per node.
/// `decades` is the range of log10 values shown (below: clamped to the bottom).
fn panel(
    out: &mut String,
    nodes: &[NodeReport],
    title: &str,
    metric: &dyn Fn(&NodeReport) -> f64,
    decades: (i32, i32),
) {
    let (w, h, left, top, bottom) = (960.0, 150.0, 56.0, 18.0, 22.0);
    let (lo, hi) = (decades.0 as f64, decades.1 as f64);
    let n = nodes.len().max(1) as f64;
    let x = |i: usize| left + (w - left - 8.0) * (i as f64 + 0.5) / n;
    let y = |v: f64| {
        let l = if v <= 0.0 { lo } else { v.log10().clamp(lo, hi) };
        top + (h - top - bottom) * (hi - l) / (hi - lo)
    };
    let _ = write!(
        out,
        "<svg class=\"plot\" viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\"><title>{}</title>",
        esc(title)
    );
    let _ = write!(out, "<text x=\"{left}\" y=\"12\" class=\"pt\">{} (log scale)</text>", esc(title));
    for e in (decades.0..=decades.1).step_by(4) {
        let yy = y(10f64.powi(e));
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{w}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" class=\"ax\">1e{e}</text>",
            left - 4.0,
            yy + 3.0
        );
    }
    let mut path = String::new();
    for (i, r) in nodes.iter().enumerate() {
        if matches!(r.status, Status::Unsupported | Status::Host) {
            continue;
        }
        let _ = write!(path, "{}{:.1},{:.1}", if path.is_empty() { "M" } else { " L" }, x(i), y(metric(r)));
    }
    let _ = write!(out, "<path d=\"{path}\" class=\"line\"/>");
    for (i, r) in nodes.iter().enumerate() {
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.6\" fill=\"{}\"><title>#{} {} ({}): {} — {}</title></circle>",
            x(i),
            y(metric(r)),
            colour(r.status),
            r.index,
            esc(&r.node),
            esc(&r.op),
            r.status.as_str(),
            fmt_f(metric(r))
        );
    }
    let _ = write!(out, "<text x=\"{left}\" y=\"{}\" class=\"ax\" text-anchor=\"start\">node 0</text>", h - 6.0);
    let _ = write!(
        out,
        "<text x=\"{w}\" y=\"{}\" class=\"ax\">node {}</text></svg>",
        h - 6.0,
        nodes.len().saturating_sub(1)
    );
}

fn plots(out: &mut String, nodes: &[NodeReport]) {
    panel(out, nodes, "max abs error", &|r| r.max_abs, (-12, 12));
    panel(out, nodes, "max rel error", &|r| r.max_rel, (-12, 12));
    panel(
        out,
        nodes,
        "max ULP distance",
        &|r| if r.max_ulp == u64::MAX { f64::MAX } else { r.max_ulp as f64 },
        (0, 20),
    );
}

fn node_table(out: &mut String, nodes: &[NodeReport], first: Option<usize>) {
    out.push_str("<table class=\"sortable\"><thead><tr><th>#</th><th>node</th><th>op</th><th>backend</th><th>status</th><th>rule</th><th>max abs</th><th>max rel</th><th>max ULP</th><th>third opinion</th><th>detail</th></tr></thead><tbody>");
    for r in nodes {
        let mark = if Some(r.index) == first { " class=\"first\"" } else { "" };
        let ulp = if r.max_ulp == u64::MAX { f64::MAX } else { r.max_ulp as f64 };
        let _ = write!(
            out,
            "<tr{mark}><td data-v=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td data-v=\"{}\"><span class=\"badge\" style=\"background:{}\">{}</span></td><td>{}</td><td data-v=\"{:e}\">{}</td><td data-v=\"{:e}\">{}</td><td data-v=\"{:e}\">{}</td><td>{}</td><td>{}</td></tr>",
            r.index,
            r.index,
            esc(&r.node),
            esc(&r.op),
            esc(&r.backend),
            r.status.as_str(),
            colour(r.status),
            r.status.as_str(),
            esc(&r.rule),
            r.max_abs,
            fmt_f(r.max_abs),
            r.max_rel,
            fmt_f(r.max_rel),
            ulp,
            fmt_u(r.max_ulp),
            third_cell(r),
            esc(r.reason.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>");
}

/// The third-opinion cell of a node row: whom the third backend sides with.
fn third_cell(r: &NodeReport) -> String {
    let Some(o) = &r.third_opinion else { return String::new() };
    let colour = match o.agrees_with {
        Side::Reference => "#d7263d",
        Side::Target => "#5b7db1",
        Side::Neither => "#f08c00",
        Side::Unsupported | Side::Error => "#9a9a9a",
    };
    format!(
        "<span class=\"badge\" style=\"background:{colour}\" title=\"{}\">{} sides with {}</span>",
        esc(&o.describe()),
        esc(&o.backend),
        o.agrees_with.as_str()
    )
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:17px;margin-top:28px}\
table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}\
th{background:#f2f2f2;cursor:pointer;user-select:none;position:sticky;top:0}th:after{content:' \\2195';color:#aaa}\
tr.first td{background:#ffe3e6;font-weight:600}.badge{color:#fff;border-radius:3px;padding:0 5px}\
.ok{color:#2e9d4a;font-weight:600}.bad{color:#d7263d;font-weight:600}dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px}dt{color:#666}\
svg.plot{display:block;margin:6px 0;background:#fcfcfc;border:1px solid #eee}.grid{stroke:#eee}\
.line{fill:none;stroke:#bbb;stroke-width:.8}.ax{font-size:9px;fill:#777;text-anchor:end}.pt{font-size:11px;fill:#333}";

const SCRIPT: &str = "document.querySelectorAll('table.sortable').forEach(function(t){t.querySelectorAll('th').forEach(function(th,i){\
th.addEventListener('click',function(){var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),asc=th.dataset.dir!=='asc';\
t.querySelectorAll('th').forEach(function(h){delete h.dataset.dir});th.dataset.dir=asc?'asc':'desc';\
var key=function(r){var c=r.cells[i],v=c.dataset.v!==undefined?c.dataset.v:c.textContent,n=parseFloat(v);return isNaN(n)?v.toLowerCase():n};\
rows.sort(function(x,y){var a=key(x),c=key(y);var r=(typeof a==='number'&&typeof c==='number')?a-c:String(a).localeCompare(String(c));return asc?r:-r});\
rows.forEach(function(r){b.appendChild(r)})})})});";

/// Render the whole page.
pub(crate) fn render(r: &Report) -> String {
    let s = &r.summary;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>strata migrate: {} on {}</title><style>{STYLE}</style></head><body>",
        esc(&r.model),
        esc(&r.target)
    );
    let verdict = if r.pass() { "<span class=\"ok\">PASS</span>" } else { "<span class=\"bad\">DIVERGES</span>" };
    let _ =
        write!(o, "<h1>Bring-up of <code>{}</code> on <code>{}</code>: {verdict}</h1>", esc(&r.model), esc(&r.target));
    let div = |d: &Option<crate::report::Divergence>| match d {
        None => "none".to_string(),
        Some(d) => format!(
            "{}node #{} <code>{}</code> ({})",
            d.stage.map(|s| format!("stage {s}, ")).unwrap_or_default(),
            d.index,
            esc(&d.node),
            esc(&d.op)
        ),
    };
    let _ = write!(
        o,
        "<dl><dt>nodes</dt><dd>{}</dd><dt>per operator</dt><dd>{} passed, {} failed, {} unsupported, {} host work</dd><dt>first failing operator</dt><dd>{}</dd><dt>stages ({})</dt><dd>{} of {} passed</dd><dt>first divergence</dt><dd>{}</dd>{}</dl>",
        s.nodes,
        s.passed,
        s.failed,
        s.unsupported,
        s.host,
        div(&s.first_failing_operator),
        esc(&r.plan),
        s.stages_passed,
        s.stages,
        div(&s.first_divergence),
        s.first_stage_error
            .as_ref()
            .map(|(i, e)| format!("<dt>first stage error</dt><dd>stage {i}: {}</dd>", esc(e)))
            .unwrap_or_default()
    );
    if let Some(t) = &s.third_opinion {
        let _ = write!(
            o,
            "<p class=\"third\">Third opinion (<code>{}</code>) on the {} failing operators: agrees with the reference (target wrong) on {}, with the target (reference suspect) on {}, with neither on {}, does not run {}.</p>",
            esc(&t.backend),
            t.asked,
            t.reference,
            t.target,
            t.neither,
            t.unsupported
        );
    }
    if !r.per_operator.is_empty() {
        o.push_str("<h2>Per operator (each node alone on the target, carved inputs)</h2>");
        plots(&mut o, &r.per_operator);
        node_table(&mut o, &r.per_operator, s.first_failing_operator.as_ref().map(|d| d.index));
    }
    if !r.stages.is_empty() {
        o.push_str("<h2>Stages (cumulative; mixed graph end to end)</h2><table class=\"sortable\"><thead><tr><th>stage</th><th>moved</th><th>requested</th><th>on target</th><th>result</th><th>first diverging node</th><th>final outputs</th></tr></thead><tbody>");
        for st in &r.stages {
            let res = if st.pass() { "<span class=\"ok\">pass</span>" } else { "<span class=\"bad\">diverges</span>" };
            let first = match (&st.first_divergence, &st.error) {
                (_, Some(e)) => format!("error: {}", esc(e)),
                (Some(d), _) => format!("#{} <code>{}</code> ({})", d.index, esc(&d.node), esc(&d.op)),
                _ => String::new(),
            };
            let outs: Vec<String> = st
                .outputs
                .iter()
                .map(|x| {
                    format!(
                        "{}: {} (abs {})",
                        esc(&x.name),
                        if x.comparison.pass { "ok" } else { "FAIL" },
                        fmt_f(x.comparison.max_abs)
                    )
                })
                .collect();
            let _ = write!(
                o,
                "<tr><td data-v=\"{}\">{}</td><td>{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td>{res}</td><td>{first}</td><td>{}</td></tr>",
                st.index,
                st.index,
                esc(&st.label),
                st.requested,
                st.requested,
                st.on_target,
                st.on_target,
                outs.join("<br>")
            );
        }
        o.push_str("</tbody></table>");
        let shown = r.stages.iter().find(|st| st.first_divergence.is_some()).or(r.stages.last());
        if let Some(st) = shown.filter(|st| !st.nodes.is_empty()) {
            let _ = write!(
                o,
                "<h2>Stage {} ({}): every intermediate value vs the reference</h2>",
                st.index,
                esc(&st.label)
            );
            plots(&mut o, &st.nodes);
            node_table(&mut o, &st.nodes, st.first_divergence.as_ref().map(|d| d.index));
        }
    }
    let _ = write!(o, "<script>{SCRIPT}</script></body></html>");
    o
}
