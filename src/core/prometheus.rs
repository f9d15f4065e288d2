//! Writing the Prometheus text exposition format (version 0.0.4): the module's `/metrics` and the
//! uploader's `--metrics` both render through this.

use std::fmt::Write as _;

/// The content type scrapers expect for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds, in seconds, of the latency histograms' buckets (besides `+Inf`).
pub const LATENCY_BOUNDS_S: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A text being written, one metric family after another.
#[derive(Default)]
pub struct Text {
    pub out: String,
}

impl Text {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                escape(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram's samples: cumulative `counts` per bound of [`LATENCY_BOUNDS_S`] then `+Inf`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], counts: &[u64], sum_s: f64) {
        let mut cumulative = 0;
        let bucket = format!("{name}_bucket");
        for (i, c) in counts.iter().enumerate() {
            cumulative += c;
            let le = LATENCY_BOUNDS_S.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&bucket, &l, cumulative);
        }
        self.sample(&format!("{name}_sum"), labels, sum_s);
        self.sample(&format!("{name}_count"), labels, cumulative);
    }
}

/// The bucket of [`LATENCY_BOUNDS_S`] (or the last, `+Inf`) a duration in seconds falls in.
pub fn latency_bucket(s: f64) -> usize {
    LATENCY_BOUNDS_S.iter().position(|b| s <= *b).unwrap_or(LATENCY_BOUNDS_S.len())
}

fn escape(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_labels_and_histograms_accumulate() {
        let mut t = Text::default();
        t.family("x_total", "counter", "Things.");
        t.sample("x_total", &[("a", "q\"\\\n")], 3);
        t.histogram("h_seconds", &[("op", "head")], &[1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 1.5);
        assert!(t.out.starts_with("# HELP x_total Things.\n# TYPE x_total counter\n"));
        assert!(t.out.contains("x_total{a=\"q\\\"\\\\\\n\"} 3\n"));
        assert!(t.out.contains("h_seconds_bucket{op=\"head\",le=\"0.001\"} 1\n"));
        assert!(t.out.contains("h_seconds_bucket{op=\"head\",le=\"0.005\"} 3\n"));
        assert!(t.out.contains("h_seconds_bucket{op=\"head\",le=\"+Inf\"} 4\n"));
        assert!(t.out.contains("h_seconds_count{op=\"head\"} 4\n"));
        assert_eq!(latency_bucket(0.0005), 0);
        assert_eq!(latency_bucket(0.001), 0);
        assert_eq!(latency_bucket(0.3), 8);
        assert_eq!(latency_bucket(99.0), LATENCY_BOUNDS_S.len());
    }
}
