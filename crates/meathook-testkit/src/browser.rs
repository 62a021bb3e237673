//! A headless Chromium for the tests that must see a page as a browser
//! renders it (the status page), and a reader of its screenshots.
//!
//! `cargo xtask ci browser` installs Chromium; under `cargo xtask ci`
//! (`MEATHOOK_REQUIRE_BROWSER` set) a missing browser fails the test,
//! elsewhere it is skipped with a message.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Chromium (`MEATHOOK_BROWSER`, else `chromium` or `chromium-browser` on
/// `PATH`), or `None` with a message when there is none. Under `cargo
/// xtask ci`, a missing browser panics: the test fails instead of skipping.
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MEATHOOK_BROWSER") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|dirs| {
        std::env::split_paths(&dirs)
            .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let hint = "no Chromium on PATH: `cargo xtask ci browser` installs it";
        assert!(
            std::env::var_os("MEATHOOK_REQUIRE_BROWSER").is_none(),
            "{hint}"
        );
        eprintln!("SKIPPED: {hint}");
    }
    found
}

/// What the browser made of a page.
#[derive(Debug)]
pub struct Rendered {
    /// The DOM after the page loaded (`--dump-dom`).
    pub dom: String,
    /// The screenshot, decoded.
    pub shot: Screenshot,
}

/// Renders `url` headless in a window of `width` × `height` pixels at a
/// device scale of 1: the DOM, and a screenshot saved at `png` and decoded.
///
/// # Panics
///
/// When the browser fails or its screenshot does not decode: a test failure.
pub fn render(browser: &Path, url: &str, (width, height): (u32, u32), png: &Path) -> Rendered {
    let profile = png.with_extension("profile");
    let run = |args: &[String]| {
        let out = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url)
            .output()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
        assert!(
            out.status.success(),
            "the browser failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom".to_owned()]);
    run(&[
        format!("--screenshot={}", png.display()),
        format!("--window-size={width},{height}"),
    ]);
    let _ = std::fs::remove_dir_all(&profile);
    Rendered {
        dom,
        shot: Screenshot::read(png),
    }
}

/// A decoded screenshot: RGB(A) pixels, row by row.
#[derive(Debug)]
pub struct Screenshot {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    channels: usize,
    pixels: Vec<u8>,
}

impl Screenshot {
    /// Decodes the PNG at `path`.
    ///
    /// # Panics
    ///
    /// When it does not decode: a test failure.
    pub fn read(path: &Path) -> Self {
        let file = std::fs::File::open(path)
            .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader
            .next_frame(&mut pixels)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self {
            width: info.width as usize,
            height: info.height as usize,
            channels: info.color_type.samples(),
            pixels,
        }
    }

    /// Whether the pixel at (`x`, `y`) is `rgb`, give or take `slack` per
    /// channel.
    pub fn is(&self, x: usize, y: usize, rgb: [u8; 3], slack: u8) -> bool {
        let p = &self.pixels[(y * self.width + x) * self.channels..][..3];
        p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= slack)
    }

    /// Bands of pixel rows holding at least `min` runs of `rgb`, one entry
    /// per band (its first row, and where each run starts): a row of
    /// coloured cells, found without knowing where the page put it.
    pub fn bands(&self, rgb: [u8; 3], min: usize) -> Vec<(usize, Vec<usize>)> {
        let runs = |y: usize| -> Vec<usize> {
            (0..self.width)
                .filter(|&x| self.is(x, y, rgb, 4) && (x == 0 || !self.is(x - 1, y, rgb, 4)))
                .collect()
        };
        let mut bands: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut above: Option<Vec<usize>> = None;
        for y in 0..self.height {
            let here = runs(y);
            let counts = here.len() >= min;
            if counts && above.as_ref() != Some(&here) {
                bands.push((y, here.clone()));
            }
            above = counts.then_some(here);
        }
        bands
    }
}
