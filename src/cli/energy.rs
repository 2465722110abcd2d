//! `qnn energy`: energy per inference, layer by layer, in Moons et al.'s model (`qnn::model::energy`).

use std::path::Path;

use anyhow::{Context, Result};
use qnn::checkpoint;
use qnn::model::energy::{self, Energy, EnergyProfile};

use super::args::EnergyArgs;
use super::dataset_kind;

/// The profile of `--profile`, or the built-in one.
pub fn load_profile(path: Option<&Path>) -> Result<EnergyProfile> {
    match path {
        None => Ok(EnergyProfile::default()),
        Some(p) => {
            let text = qnn::files::read_text(p, qnn::files::TEXT_MAX_BYTES, "an energy profile")
                .with_context(|| format!("--profile {}", p.display()))?;
            Ok(EnergyProfile::from_json(&text, &p.display().to_string())?)
        }
    }
}

pub fn energy(args: EnergyArgs) -> Result<()> {
    let profile = load_profile(args.profile.as_deref())?;
    let (what, config) = match &args.model {
        Some(m) => {
            let (_, meta) = checkpoint::load_model(m)?;
            (m.display().to_string(), meta.config)
        }
        None => {
            let kind = dataset_kind(&args.net.dataset)?;
            let config = super::train_cmd::net_config(&args.net, kind.chw(), kind.classes())?;
            (config.model_name(kind.name()), config)
        }
    };
    let e = energy::estimate(&config, &profile);
    if args.json {
        let layers: Vec<_> = e
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "layer": l.name, "bits": l.bits, "act_bits": l.act_bits, "mac_bits": l.mac_bits,
                    "macs": l.macs, "weights": l.weights, "activations": l.activations,
                    "compute_uj": l.compute_pj * 1e-6, "weights_uj": l.weights_pj * 1e-6,
                    "activations_uj": l.activations_pj * 1e-6, "total_uj": l.total_pj() * 1e-6,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "network": what, "profile": profile.name, "layers": layers,
                "total_uj": e.total_uj(), "compute_uj": e.compute_pj() * 1e-6,
                "weights_uj": e.weights_pj() * 1e-6, "activations_uj": e.activations_pj() * 1e-6,
                "assumptions": Energy::footnotes(&profile),
            })
        );
        return Ok(());
    }
    println!("{what}: energy per inference");
    print_table(&e, &profile);
    Ok(())
}

/// The per-layer table, the total with its shares, and the assumptions.
pub fn print_table(e: &Energy, profile: &EnergyProfile) {
    println!(
        "{:<12} {:>5} {:>8} {:>13} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "layer",
        "Q w/a",
        "MAC bits",
        "MACs (N_c)",
        "weights",
        "activ.",
        "compute µJ",
        "weights µJ",
        "activ. µJ",
        "total µJ"
    );
    for l in &e.layers {
        println!(
            "{:<12} {:>5} {:>8} {:>13} {:>10} {:>11} {:>11.4} {:>11.4} {:>11.4} {:>11.4}",
            l.name,
            format!("{}/{}", l.bits, l.act_bits),
            l.mac_bits,
            l.macs,
            l.weights,
            l.activations,
            l.compute_pj * 1e-6,
            l.weights_pj * 1e-6,
            l.activations_pj * 1e-6,
            l.total_pj() * 1e-6
        );
    }
    let t = e.total_pj();
    println!(
        "total: {:.4} µJ per inference — compute {:.0}%, weights {:.0}%, activations {:.0}%",
        e.total_uj(),
        100.0 * e.compute_pj() / t,
        100.0 * e.weights_pj() / t,
        100.0 * e.activations_pj() / t
    );
    println!("assumptions:");
    for (i, n) in Energy::footnotes(profile).iter().enumerate() {
        println!("  {}. {n}", i + 1);
    }
}
