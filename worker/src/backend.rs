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
    /// burn-cuda on the first NVIDIA GPU (built with the `cuda` feature).
    #[cfg(feature = "cuda")]
    Cuda,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            #[cfg(feature = "cuda")]
            Self::Cuda => "cuda",
        })
    }
}

impl BackendKind {
    /// Loads a text model on this backend: on `flex` the weights stay quantised and run on our
    /// CPU kernels ([`crate::llama_cpu`]); on `wgpu` and `cuda` the burn model keeps its Q4_0,
    /// Q4_1 and Q8_0 matrices quantised too, multiplied by CubeCL kernels ([`crate::qlinear`]).
    pub fn load_text(self, source: &ModelSource, max_batch: usize) -> Result<TextModel> {
        match self {
            Self::Flex => TextModel::load_quantized(source, max_batch),
            Self::Wgpu => TextModel::load::<Wgpu>(source, WgpuDevice::default(), max_batch),
            #[cfg(feature = "cuda")]
            Self::Cuda => {
                cuda::check_driver()?;
                TextModel::load::<burn::backend::Cuda>(source, Default::default(), max_batch)
            }
        }
    }

    /// Loads an embedding model on this backend.
    pub fn load_embedding(self, source: &ModelSource) -> Result<EmbeddingModel> {
        match self {
            Self::Flex => EmbeddingModel::load::<Flex>(source, Default::default()),
            Self::Wgpu => EmbeddingModel::load::<Wgpu>(source, WgpuDevice::default()),
            #[cfg(feature = "cuda")]
            Self::Cuda => {
                cuda::check_driver()?;
                EmbeddingModel::load::<burn::backend::Cuda>(source, Default::default())
            }
        }
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use crate::error::{Error, Result};

    /// cudarc panics when the driver library is missing: refuse with an error first.
    pub fn check_driver() -> Result<()> {
        let dirs = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
        let found = dirs
            .split(':')
            .filter(|d| !d.is_empty())
            .chain([
                "/usr/lib/x86_64-linux-gnu",
                "/usr/lib64",
                "/usr/lib/aarch64-linux-gnu",
                "/usr/local/cuda/lib64",
                "/usr/lib/wsl/lib",
            ])
            .any(|d| std::path::Path::new(d).join("libcuda.so.1").exists());
        if found {
            Ok(())
        } else {
            Err(Error::Backend(
                "libcuda.so.1 not found: the cuda backend needs the NVIDIA driver".into(),
            ))
        }
    }
}
