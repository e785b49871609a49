# Reference values for crtstats.gee (tests/test_gee.py).
#
# Data: tests/reference/data/gee_admissions.csv, the follow-up service users of the
# crtstats example trial (load_example()) with their team's arm, stratum and
# pre-period admission proportion (pre_prop).
#
# Fits come from geepack::geeglm (estimates, working correlation, robust SE). The
# bias-corrected sandwiches are computed below from the matrix formulas of the papers,
# at geepack's estimates:
#   Mancl LA, DeRouen TA (2001) Biometrics 57:126-134
#   Kauermann G, Carroll RJ (2001) JASA 96:1387-1396
#   Fay MP, Graubard BI (2001) Biometrics 57:1198-1206 (bound b = 0.75)
#
# Run from the repository root: Rscript tests/reference/gee.R

suppressPackageStartupMessages({
  library(geepack)
  library(jsonlite)
})

dat <- read.csv("tests/reference/data/gee_admissions.csv", stringsAsFactors = FALSE)
dat$arm <- factor(dat$arm, levels = c("control", "intervention"))
dat$stratum <- factor(dat$stratum)
dat$sex <- factor(dat$sex)
dat <- dat[order(dat$team_id), ]  # geeglm needs the clusters contiguous
dat$cid <- as.integer(factor(dat$team_id))  # and a numeric id

# principal inverse square root of a matrix with real positive eigenvalues
# (I - H is not symmetric; use its eigen decomposition directly)
inv_sqrt <- function(M) {
  e <- eigen(M)
  P <- Re(e$vectors)
  P %*% diag(1 / sqrt(Re(e$values)), nrow(M)) %*% solve(P)
}

sandwiches <- function(fit, data, corstr, b = 0.75) {
  X <- model.matrix(fit)
  beta <- coef(fit)
  fam <- family(fit)
  eta <- as.vector(X %*% beta)
  mu <- fam$linkinv(eta)
  y <- fit$y
  alpha <- if (corstr == "exchangeable") fit$geese$alpha[[1]] else 0
  id <- data$cid
  ids <- unique(id)
  p <- ncol(X)
  parts <- lapply(ids, function(g) {
    k <- which(id == g)
    n <- length(k)
    D <- diag(fam$mu.eta(eta[k]), n) %*% X[k, , drop = FALSE]
    A <- diag(sqrt(fam$variance(mu[k])), n)
    R <- matrix(alpha, n, n); diag(R) <- 1
    V <- A %*% R %*% A
    list(D = D, Vinv = solve(V), r = y[k] - mu[k], n = n)
  })
  B <- Reduce(`+`, lapply(parts, function(z) t(z$D) %*% z$Vinv %*% z$D))
  Binv <- solve(B)
  meat <- list(robust = 0, md = 0, kc = 0, fg = 0)
  for (z in parts) {
    H <- z$D %*% Binv %*% t(z$D) %*% z$Vinv
    IH <- diag(z$n) - H
    u_rob <- t(z$D) %*% z$Vinv %*% z$r
    u_md <- t(z$D) %*% z$Vinv %*% solve(IH) %*% z$r
    u_kc <- t(z$D) %*% z$Vinv %*% inv_sqrt(IH) %*% z$r
    Q <- t(z$D) %*% z$Vinv %*% z$D %*% Binv
    Afg <- diag(1 / sqrt(1 - pmin(b, diag(Q))), p)
    u_fg <- Afg %*% u_rob
    meat$robust <- meat$robust + u_rob %*% t(u_rob)
    meat$md <- meat$md + u_md %*% t(u_md)
    meat$kc <- meat$kc + u_kc %*% t(u_kc)
    meat$fg <- meat$fg + u_fg %*% t(u_fg)
  }
  lapply(meat, function(m) unname(Binv %*% m %*% Binv))
}

specs <- list(
  binomial_independence = list(f = admitted ~ arm + stratum + pre_prop, fam = binomial, cs = "independence"),
  binomial_exchangeable = list(f = admitted ~ arm + stratum + pre_prop, fam = binomial, cs = "exchangeable"),
  poisson_independence = list(f = bed_days ~ arm + pre_prop + sex, fam = poisson, cs = "independence"),
  poisson_exchangeable = list(f = bed_days ~ arm + pre_prop + sex, fam = poisson, cs = "exchangeable"),
  gaussian_exchangeable = list(f = age ~ arm + sex, fam = gaussian, cs = "exchangeable")
)

out <- list()
for (name in names(specs)) {
  s <- specs[[name]]
  fit <- geeglm(s$f, id = cid, data = dat, family = s$fam, corstr = s$cs)
  sw <- sandwiches(fit, dat, s$cs)
  out[[name]] <- list(
    formula = paste(deparse(s$f), collapse = ""),
    cov_struct = s$cs,
    terms = names(coef(fit)),
    coef = unname(coef(fit)),
    alpha = if (s$cs == "exchangeable") fit$geese$alpha[[1]] else 0,
    scale = fit$geese$gamma[[1]],
    geepack_robust_se = unname(sqrt(diag(vcov(fit)))),
    cov_robust = sw$robust,
    cov_mancl_derouen = sw$md,
    cov_kauermann_carroll = sw$kc,
    cov_fay_graubard = sw$fg
  )
}
out$n_clusters <- length(unique(dat$team_id))
out$nobs <- nrow(dat)

write_json(out, "tests/reference/gee.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
