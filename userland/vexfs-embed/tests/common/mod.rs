// SPDX-License-Identifier: GPL-2.0

//! The model, loaded once per test binary, or `None` (with the reason
//! printed) where `make setup` has not fetched it.

use std::sync::OnceLock;

use vexfs_embed::{default_dir, Model};

pub fn model() -> Option<&'static Model> {
    static MODEL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let Some(dir) = default_dir() else {
                eprintln!("skipped: neither VEXFS_MINILM, VEXFS_CACHE nor HOME is set");
                return None;
            };
            if !dir.join("model.safetensors").exists() {
                eprintln!(
                    "skipped: no all-MiniLM-L6-v2 in {} (run `make setup`)",
                    dir.display()
                );
                return None;
            }
            let t = std::time::Instant::now();
            let model = Model::load(&dir).expect("the model loads");
            eprintln!("model loaded from {} in {:.2?}", dir.display(), t.elapsed());
            Some(model)
        })
        .as_ref()
}
