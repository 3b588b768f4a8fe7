//! What an edition computes once per topic and shares between its subscribers (a topic's
//! literal matches, its similarity to every candidate), within a memory budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Topic → its computed items. Past `budget` items held in all, it starts afresh.
pub struct TopicMemo<T> {
    budget: usize,
    inner: Mutex<Held<T>>,
}

struct Held<T> {
    by_topic: HashMap<String, Arc<[T]>>,
    items: usize,
}

impl<T> TopicMemo<T> {
    pub fn new(budget: usize) -> Self {
        Self { budget, inner: Mutex::new(Held { by_topic: HashMap::new(), items: 0 }) }
    }

    /// The topic's items, computed by `compute` (outside the lock) the first time.
    pub fn get_or_compute(&self, topic: &str, compute: impl FnOnce() -> Arc<[T]>) -> Arc<[T]> {
        if let Some(found) = self.inner.lock().expect("the topic memo").by_topic.get(topic) {
            return found.clone();
        }
        let computed = compute();
        let mut held = self.inner.lock().expect("the topic memo");
        if held.items + computed.len() > self.budget {
            held.by_topic.clear();
            held.items = 0;
        }
        held.items += computed.len();
        held.by_topic.insert(topic.to_string(), computed.clone());
        computed
    }
}
