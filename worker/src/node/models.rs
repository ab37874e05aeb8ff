//! Which models a node serves, on which backend, and the check that Root approved their weights.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cocoon_sdk::job::{ModelKind, ModelSpec};
use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

use super::error::{NodeError, Result};
use crate::hash::{ReadObserver, reporting_reads};
use crate::progress;
use crate::text::DEFAULT_MAX_BATCH;
use crate::{BackendKind, EmbeddingModel, ModelSource, TextModel, WeightsHash, models};

/// A loaded model, shared by every job that uses it.
#[derive(Clone)]
pub enum ModelHandle {
    /// A text-generation model.
    Text(Arc<TextModel>),
    /// A sentence-embedding model.
    Embedding(Arc<EmbeddingModel>),
}

impl ModelHandle {
    /// sha256 of the weights file the model was loaded from.
    pub fn weights_hash(&self) -> WeightsHash {
        match self {
            Self::Text(m) => m.weights_hash(),
            Self::Embedding(m) => m.weights_hash(),
        }
    }

    fn kind(&self) -> ModelKind {
        match self {
            Self::Text(_) => ModelKind::Text,
            Self::Embedding(_) => ModelKind::Embedding,
        }
    }
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}({})", self.kind(), self.weights_hash())
    }
}

/// Where a served model comes from.
#[derive(Debug, Clone)]
pub enum ModelOrigin {
    /// Load the pinned weights file from the model cache (`$COCOON_MODELS_DIR`) on a backend.
    Load(BackendKind),
    /// Load a weights file at another path (its sha256 must still be the spec's).
    LoadFrom(BackendKind, std::path::PathBuf),
    /// Already loaded by the caller (tests, the demo: one model shared by several nodes).
    Loaded(ModelHandle),
}

/// One model the node serves.
#[derive(Debug, Clone)]
pub struct ServedModel {
    /// The network's description of the model (id, name, weights sha256).
    pub spec: ModelSpec,
    /// Where its weights come from.
    pub origin: ModelOrigin,
    /// Sequences decoded together (text models).
    pub max_batch: usize,
}

impl ServedModel {
    /// Serve `spec`, loading its pinned weights on `backend`.
    pub fn load(spec: ModelSpec, backend: BackendKind) -> Self {
        Self {
            spec,
            origin: ModelOrigin::Load(backend),
            max_batch: DEFAULT_MAX_BATCH,
        }
    }

    /// Serve `spec` with a model the caller already loaded.
    pub fn loaded(spec: ModelSpec, model: ModelHandle) -> Self {
        Self {
            spec,
            origin: ModelOrigin::Loaded(model),
            max_batch: DEFAULT_MAX_BATCH,
        }
    }

    /// Serve a text model already loaded.
    pub fn text(spec: ModelSpec, model: Arc<TextModel>) -> Self {
        Self::loaded(spec, ModelHandle::Text(model))
    }

    /// Serve an embedding model already loaded.
    pub fn embedding(spec: ModelSpec, model: Arc<EmbeddingModel>) -> Self {
        Self::loaded(spec, ModelHandle::Embedding(model))
    }

    /// Loads the weights (blocking: call it off the async runtime) and checks their sha256 and
    /// kind against the spec.
    pub fn open(&self) -> Result<ModelHandle> {
        let model_err = |source| NodeError::Model {
            model: self.spec.name.to_owned(),
            source,
        };
        let handle = match &self.origin {
            ModelOrigin::Loaded(h) => h.clone(),
            ModelOrigin::Load(backend) | ModelOrigin::LoadFrom(backend, _) => {
                let source = match &self.origin {
                    ModelOrigin::LoadFrom(_, path) => ModelSource {
                        path: path.clone(),
                        sha256: spec_hash(&self.spec),
                    },
                    _ => pinned_source(&self.spec)?,
                };
                let bytes = std::fs::metadata(&source.path).map_or(0, |m| m.len());
                info!(target: "worker::node", model = self.spec.name, %backend, path = %source.path.display(), bytes, "loading model");
                let progress =
                    LoadProgress::watch(self.spec.name, bytes, std::io::stderr().is_terminal());
                let loaded = reporting_reads(progress.observer(), || {
                    Ok::<_, NodeError>(match self.spec.kind {
                        ModelKind::Text => ModelHandle::Text(Arc::new(
                            backend
                                .load_text(&source, self.max_batch)
                                .map_err(model_err)?,
                        )),
                        ModelKind::Embedding => ModelHandle::Embedding(Arc::new(
                            backend.load_embedding(&source).map_err(model_err)?,
                        )),
                    })
                })?;
                let elapsed = progress.finish();
                info!(target: "worker::node", model = self.spec.name, %backend, bytes, elapsed_ms = elapsed.as_millis() as u64, "model loaded");
                loaded
            }
        };
        if handle.kind() != self.spec.kind {
            return Err(NodeError::Config(format!(
                "model {} is a {:?} model but a {:?} model was given",
                self.spec.name,
                self.spec.kind,
                handle.kind()
            )));
        }
        if handle.weights_hash() != spec_hash(&self.spec) {
            return Err(NodeError::ModelRegistry {
                model: self.spec.name.to_owned(),
                id: self.spec.id,
                reason: format!(
                    "loaded weights have sha256 {}, the network's model has {}",
                    handle.weights_hash(),
                    self.spec.weights_sha256
                ),
            });
        }
        Ok(handle)
    }
}

/// How often a model load still running says so (in the log, when no bar is drawn).
const LOAD_PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How often the bar redraws while the weights become tensors (no bytes move then).
const BAR_TICK: Duration = Duration::from_millis(200);

/// A bar by bytes read on stderr when it is a terminal, drawn nowhere otherwise.
fn load_bar(model: &str, bytes: u64, is_terminal: bool) -> ProgressBar {
    let target = progress::draw_target(is_terminal);
    let bar = ProgressBar::with_draw_target(Some(bytes), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(format!("loading {model}"));
    bar
}

/// Shows a model load: on a terminal a bar by bytes read (then a ticking "building" once the
/// weights are read: a large GGUF takes minutes either way); otherwise a log line every
/// [`LOAD_PROGRESS_EVERY`], so an operator sees the node working rather than stuck. Stops when
/// finished or dropped.
struct LoadProgress {
    started: Instant,
    bar: ProgressBar,
    stop: Option<mpsc::Sender<()>>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl LoadProgress {
    fn watch(model: &'static str, bytes: u64, is_terminal: bool) -> Self {
        let started = Instant::now();
        let bar = load_bar(model, bytes, is_terminal);
        let (stop, stopped) = mpsc::channel::<()>();
        let drawn = !bar.is_hidden();
        let ticker = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(LOAD_PROGRESS_EVERY)
            {
                // The bar says it already; a log line would break it.
                if !drawn {
                    info!(target: "worker::node", model, elapsed_s = started.elapsed().as_secs(), "still loading model");
                }
            }
        });
        if drawn {
            progress::set_drawn(Some(&bar));
            bar.enable_steady_tick(BAR_TICK);
        }
        Self {
            started,
            bar,
            stop: Some(stop),
            ticker: Some(ticker),
        }
    }

    /// What the weights read reports to: moves the bar, and says when the read is done.
    fn observer(&self) -> ReadObserver {
        let bar = self.bar.clone();
        Rc::new(move |read, total| {
            bar.set_length(total);
            bar.set_position(read);
            if read == total {
                bar.set_message("building the model");
            }
        })
    }

    /// Stops the ticker and clears the bar; the load's duration.
    fn finish(mut self) -> Duration {
        self.end();
        self.started.elapsed()
    }

    fn end(&mut self) {
        if !self.bar.is_hidden() {
            progress::set_drawn(None);
        }
        self.bar.finish_and_clear();
        drop(self.stop.take());
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LoadProgress {
    fn drop(&mut self) {
        self.end();
    }
}

fn spec_hash(spec: &ModelSpec) -> WeightsHash {
    WeightsHash(spec.weights_hash())
}

/// The pinned file of a known model in the model cache.
fn pinned_source(spec: &ModelSpec) -> Result<ModelSource> {
    let source = match spec.kind {
        ModelKind::Text => models::smollm2(),
        ModelKind::Embedding => models::minilm(),
    };
    if source.sha256 != spec_hash(spec) {
        return Err(NodeError::Config(format!(
            "no pinned weights file for model {} (give its path)",
            spec.name
        )));
    }
    Ok(source)
}

/// Security rule: serve a model only if Root's registry lists its id with exactly
/// `sha256("name@revision:weights-sha256")` of the weights this node loaded.
pub fn check_registered(spec: &ModelSpec, registry: &BTreeMap<u32, [u8; 32]>) -> Result<()> {
    let reject = |reason: String| NodeError::ModelRegistry {
        model: spec.name.to_owned(),
        id: spec.id,
        reason,
    };
    match registry.get(&spec.id) {
        None => Err(reject("Root's model registry does not list this id".into())),
        Some(h) if *h != spec.registry_hash() => Err(reject(format!(
            "Root's registry hash is {}, these weights give {}",
            hex::encode(h),
            hex::encode(spec.registry_hash())
        ))),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use cocoon_sdk::job::models::{ALL_MINILM_L6_V2, SMOLLM2_135M};

    use super::*;

    #[test]
    fn load_progress_stops_when_the_load_ends_or_is_abandoned() {
        // finish() joins the ticker: it returns as soon as the load is done, not after a tick.
        let took = LoadProgress::watch("smollm2-135m-instruct", 100, false).finish();
        assert!(took < LOAD_PROGRESS_EVERY, "{took:?}");
        // A load that fails drops it: the ticker ends too (drop joins it).
        drop(LoadProgress::watch("all-minilm-l6-v2", 100, false));
    }

    #[test]
    fn the_load_bar_is_drawn_only_on_a_terminal_and_follows_the_read() {
        let progress = LoadProgress::watch("smollm2-135m-instruct", 1_000, false);
        assert!(
            progress.bar.is_hidden(),
            "nothing drawn when stderr is not a terminal"
        );
        let report = progress.observer();
        report(400, 1_000);
        assert_eq!(progress.bar.position(), 400);
        assert_eq!(progress.bar.message(), "loading smollm2-135m-instruct");
        // The file grew since its size was taken: the read's total wins.
        report(1_200, 1_200);
        assert_eq!(progress.bar.length(), Some(1_200));
        assert_eq!(progress.bar.message(), "building the model");
        progress.finish();
        // On a terminal the bar draws to stderr (hidden all the same when the test's stderr
        // is captured, which indicatif checks itself).
        let drawn = load_bar("all-minilm-l6-v2", 10, true);
        assert_eq!(drawn.length(), Some(10));
    }

    #[test]
    fn registry_check_names_the_problem() {
        let mut reg = BTreeMap::new();
        assert!(matches!(
            check_registered(&SMOLLM2_135M, &reg),
            Err(NodeError::ModelRegistry { id: 1, .. })
        ));
        reg.insert(1, ALL_MINILM_L6_V2.registry_hash());
        let e = check_registered(&SMOLLM2_135M, &reg).unwrap_err();
        assert!(e.to_string().contains("registry hash"), "{e}");
        reg.insert(1, SMOLLM2_135M.registry_hash());
        check_registered(&SMOLLM2_135M, &reg).unwrap();
    }
}
