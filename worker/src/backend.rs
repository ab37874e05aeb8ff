//! Backend choice at run time: `flex` (pure-Rust CPU kernels) or `wgpu` (the GPU path: Vulkan,
//! Metal or DX12; Mesa's lavapipe on CPU-only machines).

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Flex, Wgpu};

use crate::embed::EmbeddingModel;
use crate::error::Result;
use crate::text::{ModelSource, TextModel};

/// A burn backend this engine runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum BackendKind {
    /// burn-flex on the CPU.
    Flex,
    /// burn-wgpu on the default adapter.
    Wgpu,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
        })
    }
}

impl BackendKind {
    /// Loads a text model on this backend: on `flex` the weights stay quantised and run on our
    /// CPU kernels ([`crate::llama_cpu`]); on `wgpu` they are dequantised to f32 for burn.
    pub fn load_text(self, source: &ModelSource, max_batch: usize) -> Result<TextModel> {
        match self {
            Self::Flex => TextModel::load_quantized(source, max_batch),
            Self::Wgpu => TextModel::load::<Wgpu>(source, WgpuDevice::default(), max_batch),
        }
    }

    /// Loads an embedding model on this backend.
    pub fn load_embedding(self, source: &ModelSource) -> Result<EmbeddingModel> {
        match self {
            Self::Flex => EmbeddingModel::load::<Flex>(source, Default::default()),
            Self::Wgpu => EmbeddingModel::load::<Wgpu>(source, WgpuDevice::default()),
        }
    }
}
