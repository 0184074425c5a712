//! Streaming statistics per series: z-score, EWMA, robust MAD, seasonal baseline, change-point.
