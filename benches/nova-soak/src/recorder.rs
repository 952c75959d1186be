//! A `metrics` recorder that keeps what the soak checks: every counter summed over its labels,
//! and the highest value each gauge ever had (`nova_send_queue_depth`: the bounded send queues).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

/// A counter summed over all its label sets.
#[derive(Debug, Default)]
struct Sum(AtomicU64);

impl CounterFn for Sum {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

/// One gauge (one label set), and the highest value of every gauge of its name.
#[derive(Debug)]
struct Peak {
    value: Mutex<f64>,
    max: Arc<AtomicU64>,
}

impl Peak {
    fn update(&self, f: impl FnOnce(f64) -> f64) {
        let mut v = self.value.lock().unwrap_or_else(PoisonError::into_inner);
        *v = f(*v);
        // Gauges here count messages: non-negative integers, far below 2^53.
        if v.is_finite() && *v > 0.0 {
            #[allow(clippy::cast_possible_truncation)]
            self.max.fetch_max(v.round() as u64, Ordering::Relaxed);
        }
    }
}

impl GaugeFn for Peak {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

/// The recorder; install it with [`Metrics::install`] before the first client is created.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    counters: Mutex<HashMap<String, Arc<Sum>>>,
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl Metrics {
    /// Installs a recorder for this process and returns it (`None` if one was installed).
    pub(crate) fn install() -> Option<&'static Metrics> {
        let metrics: &'static Metrics = Box::leak(Box::default());
        metrics::set_global_recorder(metrics).ok()?;
        Some(metrics)
    }

    /// A counter's sum over its labels.
    pub(crate) fn counter(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map_or(0, |s| s.0.load(Ordering::Relaxed))
    }

    /// The highest value any gauge of this name had.
    pub(crate) fn gauge_max(&self, name: &str) -> u64 {
        self.gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map_or(0, |m| m.load(Ordering::Relaxed))
    }
}

impl Recorder for Metrics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let sum = Arc::clone(
            self.counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key.name().to_owned())
                .or_default(),
        );
        Counter::from_arc(sum)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let max = Arc::clone(
            self.gauges
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key.name().to_owned())
                .or_default(),
        );
        Gauge::from_arc(Arc::new(Peak {
            value: Mutex::new(0.0),
            max,
        }))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
