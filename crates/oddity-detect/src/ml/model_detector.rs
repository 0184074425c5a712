//! Batch models as pipeline detectors: Isolation Forest, LOF, One-Class SVM and the ensemble,
//! fitted on a window of recent feature vectors, scoring every new one, refitted on a schedule.
//!
//! # Life of an instance
//! 1. **Warm-up.** Each observation with every configured feature present and finite becomes a
//!    row (`features`, in order); other observations are ignored. Rows go into a window of the
//!    most recent `window` rows. Nothing is scored until `warm_up` rows are in.
//! 2. **Fit.** With `warm_up` rows the members are fitted on the window (each member's
//!    estimator, deterministic given its seed), each scores the training rows, and a
//!    [`ScoreCalibration`] is fitted on those scores. The fitted model is a new **version**
//!    (1, 2, …): [`Detector::take_fitted`] hands it to the pipeline, which stores it with the
//!    batch that caused it.
//! 3. **Score.** Every later row is scored by the current model *before* it joins the window
//!    (causal: a row never judges itself). Each member's raw score becomes a **rarity**
//!    ([`ScoreCalibration::rarity`]): `ln(1/tail) / ln(2n)`, where `tail` is the share of the
//!    `n` training rows scoring higher. 1 means "as rare as the most unusual training row",
//!    0.5 about the 99th percentile with 5,000 rows, and the verdict's score is the weighted mean
//!    of the members' rarities, clamped to 0..1. A row is anomalous when that is above
//!    `threshold`, 0.8 by default (seed 003's threshold): one model flags about the rarest
//!    0.06 % of ordinary rows with a 5,000-row window (0.2 % with 1,000), an ensemble fewer
//!    unless its members agree. The calibrated CDF that the tabular ensemble averages would
//!    make 0.8 flag up to a fifth of all traffic when members agree; the log scale keeps a fixed
//!    threshold meaningful for any window size.
//!    **Beyond the training range.** Tree and neighbour models cannot tell a row just past the
//!    edge of the training data from one far past it: an Isolation Forest sends both down the
//!    same path as the most extreme training row, so a CPU reading of 97 % after a window that
//!    never left 30–53 % scored like the window's own edges (measured: rarity 0.69, not
//!    flagged). So a row with a feature outside its training range widened by `range_margin`
//!    (10 % of the range on each side by default) on any feature scores 1: it is, on that
//!    feature, rarer than every training row. The explanation lists those features.
//! 4. **Refit.** When `refit_every` of event time has passed since the last fit and at least
//!    `warm_up` new rows came in, the model is refitted on the current window, as version
//!    `N + 1`. `refit_every = "0s"` never refits.
//!
//! # State
//! The snapshot holds the window, the counters and the current version number, not the model:
//! a forest is hundreds of kilobytes and the window a few tens, and state is checkpointed every
//! few seconds while a model changes once per `refit_every`. The model is saved once per version
//! with the batch that fitted it, and given back after a restart with
//! [`Detector::restore_model`]. An instance whose model cannot be found (pruned, or a store
//! that lost it) refits on its window at the next row.
//!
//! # Cost
//! A fit runs in the worker, between two events, on up to `window` rows, and delays that
//! partition while it runs: Isolation Forest fits and scores 5,000 × 10 in about 5 ms, LOF in
//! about 30 ms (criterion `ml_5000x10`); a One-Class SVM is quadratic in the rows (0.3–0.7 s on
//! 6,500 rows of the ODDS sets: keep its window at a few thousand). Scoring, measured by the
//! `batch_models` criterion bench of `oddity-pipeline` (3 features, 5,000-row window, one core
//! of an otherwise idle 2-vCPU VM, medians, engine included): Isolation Forest 409,000 rows/s,
//! LOF 306,000, the default ensemble (forest, LOF, z-score) 183,000. Memory is the window plus
//! the model per key: key these detectors by type or globally, not per entity, unless entities
//! are few (an instance is never dropped as idle: its model is what it learnt).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use oddity_model::Explanation;

use super::{
    Ensemble, EnsembleConfig, Estimator, IsolationForest, IsolationForestModel, LocalOutlierFactor,
    LofModel, Matrix, MemberScore, Normalisation, OneClassSvmConfig, OneClassSvmModel,
    OutlierModel, ScoreCalibration, ZScore, ZScoreModel,
};
use crate::field::FieldPath;
use crate::stats::series::num;
use crate::{DetectError, Detector, DetectorKind, DetectorState, FittedModel, Input, Verdict};

/// Which batch model a detector runs: one model, or the ensemble of several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    IsolationForest,
    Lof,
    OneClassSvm,
    Ensemble,
}

impl ModelKind {
    /// The detector kind.
    pub fn detector_kind(self) -> DetectorKind {
        match self {
            ModelKind::IsolationForest => DetectorKind::IsolationForest,
            ModelKind::Lof => DetectorKind::Lof,
            ModelKind::OneClassSvm => DetectorKind::OneClassSvm,
            ModelKind::Ensemble => DetectorKind::Ensemble,
        }
    }

    /// The member name of a single-model kind (`None` for the ensemble).
    fn member(self) -> Option<&'static str> {
        match self {
            ModelKind::IsolationForest => Some(ISOLATION_FOREST),
            ModelKind::Lof => Some(LOF),
            ModelKind::OneClassSvm => Some(ONE_CLASS_SVM),
            ModelKind::Ensemble => None,
        }
    }
}

const ISOLATION_FOREST: &str = "isolation_forest";
const LOF: &str = "lof";
const ONE_CLASS_SVM: &str = "one_class_svm";
const ZSCORE: &str = "zscore";
const MEMBERS: [&str; 4] = [ISOLATION_FOREST, LOF, ONE_CLASS_SVM, ZSCORE];

/// Parameters of a batch-model detector (`kind = "isolation_forest" | "lof" | "one_class_svm" |
/// "ensemble"`); the member tables hold each model's own parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelDetectorConfig {
    /// The numbers that form a row, in order: `fields.cpu`, `value`, an attrs path like
    /// `amount`. Observations missing one are ignored.
    pub features: Vec<FieldPath>,
    /// Rows needed before the first fit, and new rows needed before a refit.
    pub warm_up: usize,
    /// Most recent rows kept to fit on.
    pub window: usize,
    /// Event time between refits (`"0s"`: never refit).
    #[serde(with = "humantime_serde")]
    pub refit_every: Duration,
    /// Score (weighted mean rarity, see the module docs) above which a row is anomalous, in
    /// (0, 1].
    pub threshold: f64,
    /// A row with a feature outside its training range widened by this share of the range on
    /// each side scores 1 (see the module docs); at least 0.
    pub range_margin: f64,
    /// Ensemble only: weight of each member by name (default: seed 003's isolation_forest 0.4,
    /// lof 0.3, zscore 0.3). Members: isolation_forest, lof, one_class_svm, zscore.
    pub weights: Option<BTreeMap<String, f64>>,
    /// Isolation Forest parameters.
    pub isolation_forest: Option<IsolationForest>,
    /// LOF parameters.
    pub lof: Option<LocalOutlierFactor>,
    /// One-Class SVM parameters.
    pub one_class_svm: Option<OneClassSvmConfig>,
    /// Multivariate z-score parameters (an ensemble member).
    pub zscore: Option<ZScore>,
}

impl Default for ModelDetectorConfig {
    fn default() -> Self {
        ModelDetectorConfig {
            features: Vec::new(),
            warm_up: 1_000,
            window: 5_000,
            refit_every: Duration::from_secs(3_600),
            threshold: EnsembleConfig::default().threshold,
            range_margin: 0.1,
            weights: None,
            isolation_forest: None,
            lof: None,
            one_class_svm: None,
            zscore: None,
        }
    }
}

impl ModelDetectorConfig {
    /// The members and their weights for `kind`.
    fn members(&self, kind: ModelKind) -> BTreeMap<String, f64> {
        match kind.member() {
            Some(name) => BTreeMap::from([(name.to_owned(), 1.0)]),
            None => self
                .weights
                .clone()
                .unwrap_or_else(|| EnsembleConfig::default().weights),
        }
    }

    /// Every problem with these parameters for a detector of `kind`.
    pub fn validate(&self, kind: ModelKind) -> Vec<String> {
        let mut problems = Vec::new();
        if self.features.is_empty() {
            problems.push(
                "features: name at least one number, e.g. [\"fields.cpu\", \"fields.mem\"], \
                 [\"amount\"] or [\"value\"]"
                    .to_owned(),
            );
        }
        if self.warm_up < 2 {
            problems.push(format!("warm_up ({}) must be at least 2", self.warm_up));
        }
        if self.window < self.warm_up {
            problems.push(format!(
                "window ({}) must be at least warm_up ({})",
                self.window, self.warm_up
            ));
        }
        if !(self.range_margin.is_finite() && self.range_margin >= 0.0) {
            problems.push(format!(
                "range_margin ({}) must be a number >= 0",
                self.range_margin
            ));
        }
        if self.weights.is_some() && kind != ModelKind::Ensemble {
            problems.push("weights apply to kind = \"ensemble\" only".to_owned());
        }
        let members = self.members(kind);
        let ensemble = EnsembleConfig {
            weights: members.clone(),
            threshold: self.threshold,
        };
        problems.extend(ensemble.validate());
        for name in members.keys() {
            if !MEMBERS.contains(&name.as_str()) {
                problems.push(format!(
                    "weights.{name}: unknown member (known: {})",
                    MEMBERS.join(", ")
                ));
            }
        }
        let given = [
            (ISOLATION_FOREST, self.isolation_forest.is_some()),
            (LOF, self.lof.is_some()),
            (ONE_CLASS_SVM, self.one_class_svm.is_some()),
            (ZSCORE, self.zscore.is_some()),
        ];
        for (name, is_given) in given {
            if is_given && !members.contains_key(name) {
                problems.push(format!(
                    "[{name}] parameters are given but {name} is not a member of this detector"
                ));
            }
        }
        if let Some(svm) = &self.one_class_svm {
            problems.extend(
                svm.validate()
                    .into_iter()
                    .map(|p| format!("one_class_svm.{p}")),
            );
        }
        if problems.is_empty() {
            // The estimators check their own parameters when fitting: fit each on a small
            // probe so that a bad value is reported now, not at the first fit in production.
            let probe: Vec<f64> = (0..16)
                .flat_map(|i| [i as f64, ((i * 7) % 5) as f64])
                .collect();
            let probe = Matrix::new(2, probe).expect("the probe matrix should be well formed");
            for name in members.keys() {
                if let Err(e) = self.fit_member(name, &probe) {
                    problems.push(format!("{name}: {e}"));
                }
            }
        }
        problems
    }

    /// A detector instance, once [`Self::validate`] finds no problem.
    pub fn build(&self, kind: ModelKind) -> Result<ModelDetector, DetectError> {
        let problems = self.validate(kind);
        if !problems.is_empty() {
            return Err(DetectError::Parameter {
                name: "model",
                reason: problems.join("; "),
            });
        }
        Ok(self.build_unchecked(kind))
    }

    /// A detector instance without validation (the configuration layer validated already).
    pub fn build_unchecked(&self, kind: ModelKind) -> ModelDetector {
        ModelDetector {
            kind,
            config: self.clone(),
            state: State::default(),
            model: None,
            fitted: None,
        }
    }

    /// Fits member `name` on `data`: the model and its scores of the training rows.
    fn fit_member(&self, name: &str, data: &Matrix) -> Result<(Member, Vec<f64>), DetectError> {
        fn fit<E: Estimator>(
            estimator: &E,
            data: &Matrix,
            wrap: fn(E::Model) -> Member,
        ) -> Result<(Member, Vec<f64>), DetectError> {
            let (model, scores) = estimator.fit_score(data)?;
            Ok((wrap(model), scores))
        }
        match name {
            ISOLATION_FOREST => fit(
                &self.isolation_forest.clone().unwrap_or_default(),
                data,
                Member::IsolationForest,
            ),
            LOF => fit(&self.lof.clone().unwrap_or_default(), data, Member::Lof),
            ONE_CLASS_SVM => fit(
                &self.one_class_svm.clone().unwrap_or_default().build()?,
                data,
                Member::OneClassSvm,
            ),
            ZSCORE => fit(
                &self.zscore.clone().unwrap_or_default(),
                data,
                Member::ZScore,
            ),
            other => Err(DetectError::Parameter {
                name: "weights",
                reason: format!("unknown member {other}"),
            }),
        }
    }
}

/// A fitted member model (serde, so a version can be stored and restored).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Member {
    IsolationForest(IsolationForestModel),
    Lof(LofModel),
    OneClassSvm(OneClassSvmModel),
    ZScore(ZScoreModel),
}

impl OutlierModel for Member {
    fn score(&self, row: &[f64]) -> f64 {
        match self {
            Member::IsolationForest(m) => m.score(row),
            Member::Lof(m) => m.score(row),
            Member::OneClassSvm(m) => m.score(row),
            Member::ZScore(m) => m.score(row),
        }
    }
}

/// One member of a stored model version.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredMember {
    name: String,
    weight: f64,
    calibration: ScoreCalibration,
    model: Member,
}

/// A model version as stored: everything needed to score, plus what explains it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredModel {
    version: u32,
    /// The features, in row order.
    features: Vec<String>,
    /// Rows it was fitted on.
    rows: u64,
    /// Per-feature minimum and maximum of the training rows.
    ranges: Vec<(f64, f64)>,
    /// The configured threshold when it was fitted (a record: verdicts use the current
    /// configuration's).
    threshold: f64,
    members: Vec<StoredMember>,
}

/// The model in use: the members combined, and what explains their verdicts.
#[derive(Debug)]
struct Current {
    version: u32,
    rows: u64,
    ranges: Vec<(f64, f64)>,
    ensemble: Ensemble,
}

impl Current {
    fn from_stored(stored: StoredModel) -> Result<Self, DetectError> {
        let weights = stored
            .members
            .iter()
            .map(|m| (m.name.clone(), m.weight))
            .collect();
        let mut ensemble = EnsembleConfig {
            weights,
            threshold: stored.threshold,
        }
        .build()?
        .with_normalisation(Normalisation::Rarity);
        for m in stored.members {
            ensemble.push_calibrated(m.name, m.weight, Box::new(m.model), m.calibration)?;
        }
        Ok(Current {
            version: stored.version,
            rows: stored.rows,
            ranges: stored.ranges,
            ensemble,
        })
    }

    /// The features of `row` outside their training range widened by `margin` of it.
    fn outside(&self, row: &[f64], margin: f64) -> Vec<usize> {
        row.iter()
            .zip(&self.ranges)
            .enumerate()
            .filter(|(_, (v, (lo, hi)))| {
                let m = margin * (hi - lo);
                **v < lo - m || **v > hi + m
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// What an instance saves (the model is saved per version, see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    /// The window, row after row, oldest first.
    #[serde(with = "crate::compact::f64_deque")]
    window: VecDeque<f64>,
    /// Rows observed since the last fit (since the start before the first).
    since_fit: u64,
    /// Version of the current model (0: none yet).
    version: u32,
    /// Event time of the row that triggered the last fit.
    fitted_at: Option<i64>,
    /// Why the last fit failed, if it did (the previous model, if any, stays in use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

/// A batch model (or ensemble) as a streaming [`Detector`] (see the module docs).
#[derive(Debug)]
pub struct ModelDetector {
    kind: ModelKind,
    config: ModelDetectorConfig,
    state: State,
    model: Option<Current>,
    /// A version fitted and not yet taken by [`Detector::take_fitted`].
    fitted: Option<FittedModel>,
}

impl ModelDetector {
    /// The version of the model in use, if any.
    pub fn version(&self) -> Option<u32> {
        self.model.as_ref().map(|m| m.version)
    }

    /// Why the last fit failed, if it did.
    pub fn last_error(&self) -> Option<&str> {
        self.state.last_error.as_deref()
    }

    fn row(&self, input: &Input<'_>) -> Option<Vec<f64>> {
        self.config
            .features
            .iter()
            .map(|f| f.number(input.event, input.attrs).filter(|v| v.is_finite()))
            .collect()
    }

    fn width(&self) -> usize {
        self.config.features.len()
    }

    fn rows_in_window(&self) -> usize {
        self.state.window.len() / self.width()
    }

    fn push(&mut self, row: &[f64]) {
        if self.rows_in_window() >= self.config.window {
            self.state.window.drain(..self.width());
        }
        self.state.window.extend(row);
        self.state.since_fit += 1;
    }

    fn due(&self, ts: i64) -> bool {
        let enough = self.state.since_fit >= self.config.warm_up as u64;
        match (&self.model, self.state.fitted_at) {
            // After a failed fit, wait for `warm_up` new rows rather than retry at every row.
            (None, _) if self.state.last_error.is_some() => enough,
            // First fit, or a model that could not be restored: as soon as the window allows.
            (None, _) => self.rows_in_window() >= self.config.warm_up,
            (Some(_), _) if self.config.refit_every.is_zero() => false,
            (Some(_), Some(at)) => {
                enough && ts.saturating_sub(at) >= self.config.refit_every.as_millis() as i64
            }
            (Some(_), None) => enough,
        }
    }

    /// Fits a new version on the window.
    fn fit(&mut self, ts: i64) {
        let data = Matrix::new(self.width(), self.state.window.iter().copied().collect())
            .expect("the window holds whole rows");
        match self.fit_on(&data) {
            Ok((stored, json)) => {
                self.fitted = Some(FittedModel {
                    version: stored.version,
                    rows: stored.rows,
                    trained_at: ts,
                    model: json,
                });
                self.state.version = stored.version;
                self.state.last_error = None;
                match Current::from_stored(stored) {
                    Ok(current) => self.model = Some(current),
                    Err(e) => self.state.last_error = Some(e.to_string()),
                }
            }
            Err(e) => self.state.last_error = Some(e.to_string()),
        }
        // Success or not, wait for `warm_up` new rows and `refit_every` before trying again.
        self.state.since_fit = 0;
        self.state.fitted_at = Some(ts);
    }

    fn fit_on(&self, data: &Matrix) -> Result<(StoredModel, serde_json::Value), DetectError> {
        let mut members = Vec::new();
        for (name, weight) in self.config.members(self.kind) {
            let (model, scores) = self.config.fit_member(&name, data)?;
            let calibration = ScoreCalibration::fit(&scores)?;
            members.push(StoredMember {
                name,
                weight,
                calibration,
                model,
            });
        }
        let ranges = (0..data.n_cols())
            .map(|c| {
                data.rows()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                        (lo.min(r[c]), hi.max(r[c]))
                    })
            })
            .collect();
        let stored = StoredModel {
            version: self.state.version + 1,
            features: self.config.features.iter().map(|f| f.to_string()).collect(),
            rows: data.n_rows() as u64,
            ranges,
            threshold: self.config.threshold,
            members,
        };
        let json = serde_json::to_value(&stored).map_err(|e| DetectError::State(e.to_string()))?;
        Ok((stored, json))
    }

    fn explain(
        &self,
        current: &Current,
        row: &[f64],
        parts: BTreeMap<String, MemberScore>,
        outside: &[usize],
    ) -> Explanation {
        let features = &self.config.features;
        let observed = serde_json::Value::Object(
            features
                .iter()
                .zip(row)
                .map(|(f, v)| (f.to_string(), num(*v)))
                .collect(),
        );
        let outside: Vec<serde_json::Value> = outside
            .iter()
            .map(|&i| features[i].to_string().into())
            .collect();
        let mut details = serde_json::Map::new();
        details.insert("model_version".into(), current.version.into());
        details.insert("trained_rows".into(), current.rows.into());
        details.insert(
            "training_range".into(),
            serde_json::Value::Object(
                features
                    .iter()
                    .zip(&current.ranges)
                    .map(|(f, (lo, hi))| (f.to_string(), serde_json::json!([num(*lo), num(*hi)])))
                    .collect(),
            ),
        );
        details.insert("outside_training_range".into(), outside.into());
        details.insert(
            "detector_results".into(),
            serde_json::to_value(parts).unwrap_or_default(),
        );
        Explanation {
            observed: Some(observed),
            feature: Some(
                features
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            details,
            ..Default::default()
        }
    }
}

impl Detector for ModelDetector {
    fn kind(&self) -> DetectorKind {
        self.kind.detector_kind()
    }

    fn observe(&mut self, input: &Input<'_>) -> Verdict {
        let Some(row) = self.row(input) else {
            return Verdict::normal();
        };
        let verdict = match &self.model {
            Some(current) => {
                let v = current.ensemble.evaluate(&row);
                let outside = current.outside(&row, self.config.range_margin);
                let score = if outside.is_empty() { v.score } else { 1.0 };
                if score > self.config.threshold {
                    let parts = v.detector_results;
                    Verdict::anomaly(score, self.explain(current, &row, parts, &outside))
                } else {
                    Verdict::scored(score)
                }
            }
            None => Verdict::normal(),
        };
        self.push(&row);
        if self.due(input.ts()) {
            self.fit(input.ts());
        }
        verdict
    }

    fn snapshot(&self) -> Result<DetectorState, DetectError> {
        DetectorState::of(&self.state)
    }

    fn restore(&mut self, state: &DetectorState) -> Result<(), DetectError> {
        let state: State = state.to()?;
        if !state.window.len().is_multiple_of(self.width()) {
            return Err(DetectError::State(format!(
                "the saved window holds {} numbers, not whole rows of {} features",
                state.window.len(),
                self.width()
            )));
        }
        self.state = state;
        self.model = None;
        Ok(())
    }

    fn take_fitted(&mut self) -> Option<FittedModel> {
        self.fitted.take()
    }

    fn model_version(&self) -> Option<u32> {
        (self.state.version > 0).then_some(self.state.version)
    }

    fn restore_model(&mut self, model: &serde_json::Value) -> Result<(), DetectError> {
        let stored: StoredModel = serde_json::from_value(model.clone())
            .map_err(|e| DetectError::State(format!("stored model: {e}")))?;
        let features: Vec<String> = self.config.features.iter().map(|f| f.to_string()).collect();
        if stored.features != features {
            return Err(DetectError::State(format!(
                "the stored model was fitted on features {:?}, the configuration has {:?}",
                stored.features, features
            )));
        }
        let members: BTreeMap<String, f64> = stored
            .members
            .iter()
            .map(|m| (m.name.clone(), m.weight))
            .collect();
        if members != self.config.members(self.kind) {
            return Err(DetectError::State(format!(
                "the stored model has members {members:?}, the configuration {:?}",
                self.config.members(self.kind)
            )));
        }
        self.model = Some(Current::from_stored(stored)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Attrs;
    use oddity_model::Event;

    fn config(kind_members: &str) -> ModelDetectorConfig {
        let mut c: ModelDetectorConfig = toml_like(kind_members);
        c.warm_up = 200;
        c.window = 400;
        c.refit_every = Duration::from_secs(60);
        c
    }

    /// A config with features cpu and mem and the given members' default parameters.
    fn toml_like(members: &str) -> ModelDetectorConfig {
        let mut c = ModelDetectorConfig {
            features: vec!["fields.cpu".parse().unwrap(), "fields.mem".parse().unwrap()],
            ..Default::default()
        };
        if members == "ensemble" {
            c.weights = Some(BTreeMap::from([
                ("isolation_forest".into(), 0.4),
                ("lof".into(), 0.3),
                ("zscore".into(), 0.3),
            ]));
        }
        c
    }

    fn event(i: i64, cpu: f64, mem: f64) -> Event {
        let mut e = Event::new("host", "metrics", i * 1_000);
        e.fields.insert("cpu".into(), cpu);
        e.fields.insert("mem".into(), mem);
        e
    }

    /// Ordinary rows: two correlated features with a little deterministic noise.
    fn ordinary(i: i64) -> Event {
        let noise = ((i * 7919) % 101) as f64 / 101.0;
        let cpu = 40.0 + 10.0 * ((i as f64) * 0.05).sin() + 3.0 * noise;
        event(i, cpu, cpu * 0.5 + 20.0 + noise)
    }

    fn observe(d: &mut ModelDetector, e: &Event) -> Verdict {
        let attrs = Attrs::new(e);
        d.observe(&Input::new(e, &attrs))
    }

    #[test]
    fn every_kind_warms_up_fits_and_flags_an_outlier() {
        for kind in [
            ModelKind::IsolationForest,
            ModelKind::Lof,
            ModelKind::OneClassSvm,
            ModelKind::Ensemble,
        ] {
            let members = if kind == ModelKind::Ensemble {
                "ensemble"
            } else {
                "one"
            };
            let mut d = ModelDetectorConfig {
                warm_up: 500,
                window: 1_000,
                ..config(members)
            }
            .build(kind)
            .unwrap();
            for i in 0..499 {
                assert_eq!(
                    observe(&mut d, &ordinary(i)),
                    Verdict::normal(),
                    "{kind:?} {i}"
                );
            }
            assert!(d.take_fitted().is_none());
            observe(&mut d, &ordinary(499));
            let fitted = d.take_fitted().expect("fitted after warm-up");
            assert_eq!((fitted.version, fitted.rows), (1, 500), "{kind:?}");
            assert_eq!(d.version(), Some(1));
            let mut flagged = 0;
            for i in 500..1_000 {
                let v = observe(&mut d, &ordinary(i));
                assert!((0.0..=1.0).contains(&v.score), "{kind:?}: {v:?}");
                flagged += usize::from(v.anomalous);
            }
            // threshold 0.8 with 500 training rows: the rarest 1000^-0.8 = 0.4 % of rows
            assert!(
                flagged <= 5,
                "{kind:?}: {flagged} of 500 ordinary rows flagged"
            );
            let v = observe(&mut d, &event(1_000, 95.0, 5.0));
            assert!(v.anomalous, "{kind:?}: {v:?}");
            let explanation = v.explanation.unwrap();
            assert_eq!(
                explanation.feature.as_deref(),
                Some("fields.cpu,fields.mem")
            );
            assert_eq!(
                explanation.details["model_version"], 2,
                "refitted at row 999"
            );
            assert_eq!(
                explanation.details["outside_training_range"],
                serde_json::json!(["fields.cpu", "fields.mem"]),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn refits_after_refit_every_and_warm_up_new_rows() {
        let mut d = config("one").build(ModelKind::IsolationForest).unwrap();
        let mut versions = vec![];
        for i in 0..1_000 {
            observe(&mut d, &ordinary(i));
            if let Some(f) = d.take_fitted() {
                versions.push((i, f.version, f.rows));
            }
        }
        // warm_up 200 rows at 1 s each; refit every 60 s but only after 200 new rows; window 400
        assert_eq!(
            versions,
            vec![
                (199, 1, 200),
                (399, 2, 400),
                (599, 3, 400),
                (799, 4, 400),
                (999, 5, 400)
            ]
        );
        let mut never = ModelDetectorConfig {
            refit_every: Duration::ZERO,
            ..config("one")
        }
        .build(ModelKind::IsolationForest)
        .unwrap();
        let fits = (0..1_000)
            .filter(|i| {
                observe(&mut never, &ordinary(*i));
                never.take_fitted().is_some()
            })
            .count();
        assert_eq!(fits, 1);
    }

    #[test]
    fn rows_beyond_the_widened_training_range_score_one() {
        let mut d = config("one").build(ModelKind::IsolationForest).unwrap();
        for i in 0..200 {
            observe(&mut d, &ordinary(i));
        }
        let current = d.model.as_ref().unwrap();
        let (lo, hi) = current.ranges[0];
        let mem = current.ranges[1].0;
        let span = hi - lo;
        assert!(current.outside(&[hi + 0.05 * span, mem], 0.1).is_empty());
        assert_eq!(current.outside(&[hi + 0.15 * span, mem], 0.1), vec![0]);
        assert_eq!(current.outside(&[lo - 0.15 * span, mem], 0.1), vec![0]);
        assert_eq!(current.outside(&[hi + 0.05 * span, mem], 0.0), vec![0]);
        let v = observe(&mut d, &event(200, hi + 0.5 * span, mem));
        assert_eq!(v.score, 1.0, "{v:?}");
        assert_eq!(
            v.explanation.unwrap().details["outside_training_range"],
            serde_json::json!(["fields.cpu"])
        );
    }

    #[test]
    fn rows_missing_a_feature_are_ignored() {
        let mut d = config("one").build(ModelKind::IsolationForest).unwrap();
        let mut e = Event::new("host", "metrics", 0);
        e.fields.insert("cpu".into(), 1.0);
        assert_eq!(observe(&mut d, &e), Verdict::normal());
        e.fields.insert("mem".into(), f64::NAN);
        assert_eq!(observe(&mut d, &e), Verdict::normal());
        assert_eq!(d.state, State::default());
    }

    #[test]
    fn snapshot_and_stored_model_restore_to_identical_verdicts() {
        let config = config("ensemble");
        let mut a = config.build(ModelKind::Ensemble).unwrap();
        let mut stored = None;
        for i in 0..300 {
            observe(&mut a, &ordinary(i));
            if let Some(f) = a.take_fitted() {
                stored = Some(f);
            }
        }
        let stored = stored.unwrap();
        let snap = a.snapshot().unwrap();
        let json = serde_json::to_string(&snap).unwrap();
        let mut b = config.build(ModelKind::Ensemble).unwrap();
        b.restore(&serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(b.model_version(), Some(stored.version));
        let model_json = serde_json::to_string(&stored.model).unwrap();
        b.restore_model(&serde_json::from_str(&model_json).unwrap())
            .unwrap();
        for i in 300..700 {
            let e = if i % 97 == 0 {
                event(i, 90.0, 10.0)
            } else {
                ordinary(i)
            };
            assert_eq!(observe(&mut a, &e), observe(&mut b, &e), "row {i}");
            assert_eq!(a.take_fitted(), b.take_fitted(), "row {i}");
        }
    }

    #[test]
    fn a_missing_model_is_refitted_from_the_window() {
        let config = config("one");
        let mut a = config.build(ModelKind::Lof).unwrap();
        for i in 0..250 {
            observe(&mut a, &ordinary(i));
        }
        let mut b = config.build(ModelKind::Lof).unwrap();
        b.restore(&a.snapshot().unwrap()).unwrap();
        assert_eq!(b.version(), None);
        observe(&mut b, &ordinary(250));
        let f = b.take_fitted().expect("refitted at once");
        assert_eq!((f.version, f.rows), (2, 251));
    }

    #[test]
    fn a_failed_fit_waits_for_warm_up_new_rows_before_retrying() {
        let broken = ModelDetectorConfig {
            isolation_forest: Some(IsolationForest {
                n_estimators: 0,
                ..Default::default()
            }),
            ..config("one")
        };
        let mut d = broken.build_unchecked(ModelKind::IsolationForest);
        for i in 0..200 {
            observe(&mut d, &ordinary(i));
        }
        assert!(d.take_fitted().is_none());
        let error = d.last_error().expect("the fit failed").to_owned();
        assert!(error.contains("n_estimators"), "{error}");
        assert_eq!(d.state.since_fit, 0);
        for i in 200..399 {
            observe(&mut d, &ordinary(i));
        }
        assert_eq!(d.state.since_fit, 199, "no retry before warm_up new rows");
        observe(&mut d, &ordinary(399));
        assert_eq!(d.state.since_fit, 0, "retried");
    }

    #[test]
    fn restore_rejects_a_model_of_other_members() {
        let mut a = config("ensemble").build(ModelKind::Ensemble).unwrap();
        for i in 0..200 {
            observe(&mut a, &ordinary(i));
        }
        let model = a.take_fitted().unwrap().model;
        let mut other = ModelDetectorConfig {
            weights: Some(BTreeMap::from([("isolation_forest".into(), 1.0)])),
            ..config("ensemble")
        }
        .build(ModelKind::Ensemble)
        .unwrap();
        let err = other.restore_model(&model).unwrap_err().to_string();
        assert!(err.contains("members"), "{err}");
    }

    #[test]
    fn restore_rejects_a_model_of_other_features() {
        let mut a = config("one").build(ModelKind::IsolationForest).unwrap();
        for i in 0..200 {
            observe(&mut a, &ordinary(i));
        }
        let model = a.take_fitted().unwrap().model;
        let mut other = ModelDetectorConfig {
            features: vec!["fields.cpu".parse().unwrap()],
            ..config("one")
        }
        .build(ModelKind::IsolationForest)
        .unwrap();
        let err = other.restore_model(&model).unwrap_err().to_string();
        assert!(err.contains("fields.mem"), "{err}");
    }

    #[test]
    fn validation_names_every_problem() {
        let c = ModelDetectorConfig {
            warm_up: 1,
            window: 0,
            weights: Some(BTreeMap::from([("magic".into(), 1.0)])),
            threshold: 1.5,
            range_margin: -1.0,
            lof: Some(LocalOutlierFactor::default()),
            ..Default::default()
        };
        let problems = c.validate(ModelKind::IsolationForest).join("\n");
        for want in [
            "features: name at least one number",
            "warm_up (1) must be at least 2",
            "window (0) must be at least warm_up (1)",
            "weights apply to kind = \"ensemble\" only",
            "[lof] parameters are given but lof is not a member",
            "threshold (1.5) must be in (0, 1]",
            "range_margin (-1) must be a number >= 0",
        ] {
            assert!(problems.contains(want), "missing {want:?} in:\n{problems}");
        }
        let c = ModelDetectorConfig {
            features: vec!["value".parse().unwrap()],
            weights: Some(BTreeMap::from([("magic".into(), 1.0)])),
            ..Default::default()
        };
        let problems = c.validate(ModelKind::Ensemble).join("\n");
        assert!(
            problems.contains("weights.magic: unknown member"),
            "{problems}"
        );
        let c = ModelDetectorConfig {
            features: vec!["value".parse().unwrap()],
            isolation_forest: Some(IsolationForest {
                n_estimators: 0,
                ..Default::default()
            }),
            ..Default::default()
        };
        let problems = c.validate(ModelKind::IsolationForest).join("\n");
        assert!(
            problems.contains("isolation_forest: invalid parameter n_estimators"),
            "{problems}"
        );
    }
}
