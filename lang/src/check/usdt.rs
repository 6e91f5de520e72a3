//! `usdt:PATH:PROVIDER:NAME` attach points: expanded into one attach point per probe site of
//! the ELF file's `.note.stapsdt` (each site may keep its arguments elsewhere, so each gets its
//! own program, like a wildcard match), then each site checked: a semaphore, if any, that the
//! kernel can set (E0266; the runtime has the kernel count it while the probe is attached), and
//! its argument specs parsed for `arg0..` (`crate::usdt`).

use super::Checker;
use crate::ast::{self, AttachKind};
use crate::diag::Diagnostic;
use crate::hir;
use crate::span::Span;
use crate::targets::UsdtSite;
use crate::usdt::{parse_args, UsdtArg};

/// The most sites one `usdt` attach point may expand to (one program each).
const MAX_USDT_SITES: usize = 64;

impl Checker<'_> {
    /// One attach point per site of the USDT probe `point` names, each with its address; none
    /// (reported) when the file has no such probe.
    pub(super) fn expand_usdt(&mut self, point: &ast::AttachPoint) -> Vec<ast::AttachPoint> {
        let AttachKind::Usdt { path, provider, name, .. } = &point.kind else { return vec![point.clone()] };
        let sites = self.usdt_sites_of(path, provider, name, point.span);
        if sites.len() > MAX_USDT_SITES {
            self.report(
                Diagnostic::error(
                    "E0264",
                    format!("USDT probe `{provider}:{name}` has {} sites, more than {MAX_USDT_SITES}", sites.len()),
                    point.span,
                )
                .label("too many sites")
                .with_help("each site is a separate program in the kernel"),
            );
            return vec![];
        }
        sites
            .iter()
            .map(|site| ast::AttachPoint {
                kind: AttachKind::Usdt {
                    path: path.clone(),
                    provider: provider.clone(),
                    name: name.clone(),
                    site: Some(site.address),
                },
                span: point.span,
            })
            .collect()
    }

    /// The checked site at `address` (the first site when `None`, as a caller that did not
    /// expand gets) and its parsed arguments; `None` when it is missing or has a semaphore the
    /// kernel cannot set (reported).
    pub(super) fn attach_usdt(
        &mut self,
        path: &str,
        provider: &str,
        name: &str,
        address: Option<u64>,
        span: Span,
    ) -> Option<(hir::Attach, Vec<Result<UsdtArg, String>>)> {
        let sites = self.usdt_sites_of(path, provider, name, span);
        let site = match address {
            Some(address) => sites.into_iter().find(|site| site.address == address)?,
            None => sites.into_iter().next()?,
        };
        if let Some(problem) = &site.semaphore_unusable {
            self.report(
                Diagnostic::error(
                    "E0266",
                    format!("USDT probe `{provider}:{name}` has a semaphore the kernel cannot set"),
                    span,
                )
                .label(format!("its site at {:#x} only fires while its semaphore is set: {problem}", site.address))
                .with_help(
                    "the kernel counts a USDT semaphore in the file's writable data (`<sys/sdt.h>` puts it in \
                     `.probes`); probe a site without a semaphore (`readelf -n PATH`) or rebuild the program",
                ),
            );
            return None;
        }
        let attach = hir::Attach::Usdt {
            path: path.to_string(),
            provider: provider.to_string(),
            name: name.to_string(),
            address: site.address,
            span,
        };
        Some((attach, parse_args(&site.args)))
    }

    /// The sites of `provider:name` in `path`; none (reported with the closest probe names)
    /// when there are none.
    fn usdt_sites_of(&mut self, path: &str, provider: &str, name: &str, span: Span) -> Vec<UsdtSite> {
        let all = match self.targets.usdt_sites(path) {
            Ok(all) => all,
            Err(error) => {
                self.report(
                    Diagnostic::error("E0264", format!("cannot read the USDT probes of `{path}`"), span)
                        .label(error.message)
                        .with_help(
                            "USDT probes are read from the binary's `.note.stapsdt` section, on the target host",
                        ),
                );
                return Vec::new();
            }
        };
        let sites: Vec<UsdtSite> =
            all.iter().filter(|site| site.provider == provider && site.name == name).cloned().collect();
        if sites.is_empty() {
            let mut names: Vec<String> = all.iter().map(|site| format!("{}:{}", site.provider, site.name)).collect();
            names.sort();
            names.dedup();
            let wanted = format!("{provider}:{name}");
            let help = match super::closest(&wanted, names.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `{close}`?"),
                None if names.is_empty() => format!("`{path}` declares no USDT probes"),
                None => format!("its probes are {}", names.join(", ")),
            };
            self.report(
                Diagnostic::error("E0264", format!("no USDT probe `{wanted}` in `{path}`"), span)
                    .label("no such probe")
                    .with_help(help),
            );
        }
        sites
    }
}
