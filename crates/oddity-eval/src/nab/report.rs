//! The people-readable table of a [`NabReport`].

use std::fmt;

use super::NabReport;

impl fmt::Display for NabReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "NAB: {} files, {} windows; fixed threshold {}",
            self.files, self.windows, self.fixed_threshold
        )?;
        writeln!(
            f,
            "{:<18} {:<19} {:>10} {:>7} {:>8} {:>7} {:>6} | {:>7} {:>7} {:>6}",
            "detector", "profile", "threshold", "NAB", "raw", "hit", "FP", "fixed", "hit", "FP"
        )?;
        for d in &self.detectors {
            for (o, x) in d.optimized.iter().zip(&d.fixed) {
                let profile = o.profile;
                let (o, x) = (&o.outcome, &x.outcome);
                writeln!(
                    f,
                    "{:<18} {:<19} {:>10.6} {:>7.2} {:>8.2} {:>7} {:>6} | {:>7.2} {:>7} {:>6}",
                    d.detector,
                    profile,
                    o.threshold,
                    o.normalized,
                    o.raw,
                    format!("{}/{}", o.windows_hit, o.windows),
                    o.fp_rows,
                    x.normalized,
                    format!("{}/{}", x.windows_hit, x.windows),
                    x.fp_rows
                )?;
            }
        }
        Ok(())
    }
}
