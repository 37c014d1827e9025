//! Where the plots go: every `--plot FILE` is drawn as SVG (plotters) and
//! written as is for `FILE.svg`, or rendered to PNG (resvg) for `FILE.png`,
//! with the system's fonts for the text.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Writes `svg` to `path`: as SVG, or as PNG when the name ends in `.png`.
/// Any other extension is an error that says which ones work.
pub fn write(path: &Path, svg: &str) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "svg" => std::fs::write(path, svg).with_context(|| format!("writing {}", path.display())),
        "png" => write_png(path, svg),
        _ => bail!(
            "{}: a plot is written as .svg or .png (the name says which)",
            path.display()
        ),
    }
}

fn write_png(path: &Path, svg: &str) -> Result<()> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    // The plots ask for "sans-serif": give it a sans face that is there.
    let sans = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .find(|n| n.contains("Sans") && !n.contains("Mono"));
    match sans {
        Some(family) => db.set_sans_serif_family(family),
        None => eprintln!(
            "warning: no sans-serif font found on this system: {} has no text (an .svg has)",
            path.display()
        ),
    }
    let tree = usvg::Tree::from_str(svg, &opt).context("reading the plot's SVG")?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).context("a picture of no size")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .save_png(path)
        .with_context(|| format!("writing {}", path.display()))
}
