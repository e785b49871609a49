# Reference values for crtstats.glmm (random-intercept GLMM).
#
# Run from the project folder:  Rscript tests/reference/glmm.R
# Writes the data sets it fits to tests/reference/data/glmm_*.csv and the fits to
# tests/reference/glmm.json (full precision). Binomial and Poisson fits use
# lme4::glmer (Laplace, nAGQ = 1, and adaptive Gauss-Hermite, nAGQ = 10); negative
# binomial (NB2) fits use glmmTMB(family = nbinom2) (Laplace).
#
# Real data: lme4::cbpp (binomial, aggregated and expanded to 0/1 rows) and
# lme4::grouseticks (counts). Generated data: a CORE-like 0/1 admissions trial,
# team-by-period counts with exposure (Poisson and NB2), and a 0/1 data set without
# any cluster variation (a boundary fit).

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

data_dir <- file.path("tests", "reference", "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)
write_data <- function(df, name) {
  write.csv(df, file.path(data_dir, paste0("glmm_", name, ".csv")), row.names = FALSE)
  invisible(df)
}

# -- data --------------------------------------------------------------------------
cbpp_agg <- data.frame(
  herd = sprintf("h%02d", as.integer(cbpp$herd)),
  period = paste0("p", cbpp$period),
  incidence = cbpp$incidence,
  size = cbpp$size
)
write_data(cbpp_agg, "cbpp")

# one row per animal: incidence ones and size - incidence zeros per herd and period
rows <- lapply(seq_len(nrow(cbpp_agg)), function(i) {
  r <- cbpp_agg[i, ]
  data.frame(herd = r$herd, period = r$period,
             y = c(rep(1L, r$incidence), rep(0L, r$size - r$incidence)))
})
cbpp_01 <- write_data(do.call(rbind, rows), "cbpp01")

grouse <- write_data(data.frame(
  brood = paste0("b", grouseticks$BROOD),
  year = paste0("y", grouseticks$YEAR),
  cheight = grouseticks$cHEIGHT,
  ticks = grouseticks$TICKS
), "grouseticks")

set.seed(20261122)
# CORE-like binary admissions: 30 teams, 5 trusts, team-level arm and pre-period
# admission proportion, person-level age (centred, per 10 years)
n_teams <- 30
teams <- data.frame(
  team_id = sprintf("T%02d", seq_len(n_teams)),
  stratum = paste0("S", rep(1:5, each = 6)),
  arm = rep(c("control", "intervention", "intervention", "control", "intervention",
              "intervention"), 5),
  pre_prop = round(runif(n_teams, 0.15, 0.5), 3),
  size = sample(20:80, n_teams, replace = TRUE),
  u = rnorm(n_teams, 0, 0.4)
)
trial <- do.call(rbind, lapply(seq_len(n_teams), function(i) {
  t <- teams[i, ]
  age_c <- round(rnorm(t$size, 0, 1.5), 1)
  eta <- -1 + log(0.7) * (t$arm == "intervention") +
    c(S1 = 0, S2 = 0.2, S3 = -0.1, S4 = 0.3, S5 = 0.1)[[t$stratum]] +
    2 * (t$pre_prop - 0.3) + 0.15 * age_c + t$u
  data.frame(team_id = t$team_id, arm = t$arm, stratum = t$stratum,
             pre_prop = t$pre_prop, age_c = age_c,
             admitted = rbinom(t$size, 1, plogis(eta)))
}))
trial <- write_data(trial, "trial01")

# team-by-period counts with exposure: 25 teams (15 intervention, 10 control)
make_counts <- function(theta) {
  n <- 25
  tm <- data.frame(team_id = sprintf("T%02d", seq_len(n)),
                   arm = rep(c("intervention", "intervention", "control", "intervention",
                               "control"), 5),
                   u = rnorm(n, 0, 0.3))
  out <- do.call(rbind, lapply(seq_len(n), function(i) {
    per <- c("pre", "follow_up")
    n_users <- sample(30:90, 2, replace = TRUE)
    mu <- n_users * exp(-1.2 - 0.1 * (per == "follow_up") +
                          0.05 * (tm$arm[i] == "intervention") -
                          0.3 * (tm$arm[i] == "intervention") * (per == "follow_up") + tm$u[i])
    y <- if (is.null(theta)) rpois(2, mu) else rnbinom(2, size = theta, mu = mu)
    data.frame(team_id = tm$team_id[i], arm = tm$arm[i], period = per,
               n_users = n_users, log_users = log(n_users), admissions = y)
  }))
  out
}
counts_pois <- write_data(make_counts(NULL), "counts_pois")
counts_nb <- write_data(make_counts(6), "counts_nb")

# no cluster variation at all: the ML estimate of the team variance is zero
flat <- data.frame(team_id = sprintf("T%02d", rep(1:20, each = 15)),
                   x = round(rnorm(300), 2))
flat$y <- rbinom(300, 1, plogis(-0.5 + 0.5 * flat$x))
flat <- write_data(flat, "flat01")

# -- fits --------------------------------------------------------------------------
glmer_out <- function(fit) {
  v <- as.matrix(vcov(fit))
  re <- ranef(fit, condVar = TRUE)[[1]]
  list(
    names = names(fixef(fit)),
    estimate = unname(fixef(fit)),
    std_error = unname(sqrt(diag(v))),
    vcov = unname(v),
    sigma2 = unname(VarCorr(fit)[[1]][1, 1]),
    theta = unname(getME(fit, "theta")),
    loglik = as.numeric(logLik(fit)),
    nobs = nobs(fit),
    singular = isSingular(fit),
    ranef_levels = rownames(re),
    ranef_mode = unname(re[, 1]),
    ranef_se = unname(sqrt(attr(re, "postVar")[1, 1, ])),
    converged_messages = fit@optinfo$conv$lme4$messages
  )
}
# glmer's defaults stop the inner PIRLS iterations at tolPwrss = 1e-7, which leaves the
# Laplace deviance inexact by up to ~1e-4 and its finite-difference Hessian (hence the
# SEs) off by up to ~1%. The "strict" fits tighten PIRLS and the optimiser so that the
# reported optimum and vcov() are those of the Laplace / AGQ likelihood itself; the
# tests compare estimates and SEs with the strict fits and log-likelihoods with both.
strict <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                       optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
both_agq <- function(formula, data, family) {
  list(
    laplace = glmer_out(glmer(formula, data = data, family = family, nAGQ = 1)),
    agq10 = glmer_out(glmer(formula, data = data, family = family, nAGQ = 10)),
    laplace_strict = glmer_out(glmer(formula, data = data, family = family, nAGQ = 1,
                                     control = strict)),
    agq10_strict = glmer_out(glmer(formula, data = data, family = family, nAGQ = 10,
                                   control = strict))
  )
}
tmb_out <- function(fit) {
  v <- vcov(fit)$cond
  re <- ranef(fit, condVar = TRUE)$cond[[1]]
  list(
    names = names(fixef(fit)$cond),
    estimate = unname(fixef(fit)$cond),
    std_error = unname(sqrt(diag(v))),
    vcov = unname(v),
    sigma2 = unname(VarCorr(fit)$cond[[1]][1, 1]),
    dispersion = sigma(fit),
    loglik = as.numeric(logLik(fit)),
    nobs = nobs(fit),
    ranef_levels = rownames(re),
    ranef_mode = unname(re[, 1]),
    ranef_se = unname(sqrt(attr(re, "condVar")[1, 1, ])),
    pdHess = fit$sdr$pdHess
  )
}

ref <- list(
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  glmmTMB = as.character(packageVersion("glmmTMB"))),
  cbpp = both_agq(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp_agg,
                  binomial),
  cbpp01 = both_agq(y ~ period + (1 | herd), cbpp_01, binomial),
  trial01 = both_agq(admitted ~ arm + stratum + pre_prop + age_c + (1 | team_id), trial,
                     binomial),
  grouseticks = both_agq(ticks ~ year + cheight + (1 | brood), grouse, poisson),
  counts_pois = both_agq(admissions ~ arm * period + offset(log_users) + (1 | team_id),
                         counts_pois, poisson),
  flat01 = both_agq(y ~ x + (1 | team_id), flat, binomial),
  counts_nb = list(laplace = tmb_out(glmmTMB(
    admissions ~ arm * period + offset(log_users) + (1 | team_id), data = counts_nb,
    family = nbinom2))),
  grouseticks_nb = list(laplace = tmb_out(glmmTMB(
    ticks ~ year + cheight + (1 | brood), data = grouse, family = nbinom2)))
)

write_json(ref, file.path("tests", "reference", "glmm.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
