# The plain R loop that a simulation-based power calculation for the CORE design runs:
# simulate a trial, fit the planned analysis, test the arm effect, repeat.
#
#   Rscript benchmarks/bench_power.R [N_LMM] [N_GLMM] [REPEATS] [OUT.json]
#
# Defaults: 200 LMM trials, 100 GLMM trials, each loop timed 3 times (median reported).
#
# (1) Fidelity: 25 teams (15 intervention, 10 control), 3 reviews (baseline, 6m, 12m),
#     team random intercept with ICC 0.3 for the fidelity total (SD 15 points), an
#     intervention effect of 10 points at 6 and 12 months. Each trial fits
#     lmer(total ~ arm * review + (1 | team), REML = TRUE) and tests the arm effect at
#     12 months (arm + arm:review12m) with Kenward-Roger (pbkrtest's vcovAdj and Lb_ddf,
#     the quantities KRmodcomp uses; t on the KR df).
# (2) Admissions: the same 25 teams with about 60 service users each (Poisson(60) sizes),
#     risk 0.30 in control, odds ratio 0.7, team random-intercept SD 0.5 on the logit scale.
#     Each trial fits glmer(admitted ~ arm + (1 | team), family = binomial) (Laplace) and
#     tests the arm effect with t on the between-within df (25 - 2 = 23).
#
# Prints milliseconds per simulated trial (simulation + fit + test; elapsed and CPU), of
# which the fit alone, and the rejection rate at alpha = 0.05. Time on a quiet machine: other work on
# the same cores inflates every figure. The figures are what the Python simulation is compared against.
suppressPackageStartupMessages({
  library(lme4)
  library(pbkrtest)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
n_lmm <- if (length(args) >= 1) as.integer(args[1]) else 200L
n_glmm <- if (length(args) >= 2) as.integer(args[2]) else 100L
repeats <- if (length(args) >= 3) as.integer(args[3]) else 3L
out <- if (length(args) >= 4) args[4] else NA

n_int <- 15L
n_ctl <- 10L
n_teams <- n_int + n_ctl
arm_of_team <- c(rep(1L, n_int), rep(0L, n_ctl))

# ---- fidelity design (team x review) -----------------------------------------------
fid <- expand.grid(review = c("baseline", "6m", "12m"), team = seq_len(n_teams),
                   stringsAsFactors = FALSE)
fid$review <- factor(fid$review, levels = c("baseline", "6m", "12m"))
fid$team <- factor(fid$team)
fid$arm <- arm_of_team[as.integer(fid$team)]
total_sd <- 15
icc <- 0.3
sd_team <- sqrt(icc) * total_sd
sd_resid <- sqrt(1 - icc) * total_sd
effect <- 10
mu_fid <- 110 + effect * fid$arm * (fid$review != "baseline")
# Coefficients of total ~ arm * review: (Intercept), arm, review6m, review12m,
# arm:review6m, arm:review12m; the arm effect at 12 months is arm + arm:review12m.
L <- matrix(c(0, 1, 0, 0, 0, 1), nrow = 1)

# Kenward-Roger for the one-df contrast: the adjusted covariance (vcovAdj) and the KR df
# (Lb_ddf), as KRmodcomp computes them for the full model, without refitting the
# restricted model that KRmodcomp also fits (so this loop is the faster R route).
fit_seconds <- 0
n_singular <- 0L
one_lmm_trial <- function() {
  u <- rnorm(n_teams, 0, sd_team)
  fid$total <- mu_fid + u[as.integer(fid$team)] + rnorm(nrow(fid), 0, sd_resid)
  t0 <- proc.time()[["elapsed"]]
  fit <- suppressMessages(lmer(total ~ arm * review + (1 | team), data = fid, REML = TRUE))
  fit_seconds <<- fit_seconds + proc.time()[["elapsed"]] - t0
  n_singular <<- n_singular + isSingular(fit)
  v_kr <- vcovAdj(fit)  # keeps the attributes Lb_ddf needs
  ddf <- Lb_ddf(L, as.matrix(vcov(fit)), v_kr)
  est <- sum(L * fixef(fit))
  se <- sqrt(drop(L %*% as.matrix(v_kr) %*% t(L)))
  2 * pt(abs(est / se), df = ddf, lower.tail = FALSE)
}

# ---- admissions design (service user) ----------------------------------------------
logit_ctl <- qlogis(0.30)
log_or <- log(0.7)
sd_team_logit <- 0.5

one_glmm_trial <- function() {
  sizes <- pmax(rpois(n_teams, 60), 1L)
  team <- rep(seq_len(n_teams), sizes)
  arm <- arm_of_team[team]
  u <- rnorm(n_teams, 0, sd_team_logit)
  eta <- logit_ctl + log_or * arm + u[team]
  d <- data.frame(admitted = rbinom(length(eta), 1, plogis(eta)), arm = arm,
                  team = factor(team))
  t0 <- proc.time()[["elapsed"]]
  fit <- suppressMessages(glmer(admitted ~ arm + (1 | team), data = d, family = binomial))
  fit_seconds <<- fit_seconds + proc.time()[["elapsed"]] - t0
  n_singular <<- n_singular + isSingular(fit)
  co <- summary(fit)$coefficients["arm", ]
  tval <- co[["Estimate"]] / co[["Std. Error"]]
  2 * pt(abs(tval), df = n_teams - 2, lower.tail = FALSE)
}

time_loop <- function(trial_fn, n) {
  p <- numeric(n)
  fit_seconds <<- 0
  n_singular <<- 0L
  st <- system.time(for (i in seq_len(n)) p[i] <- trial_fn())
  cpu <- st[["user.self"]] + st[["sys.self"]]
  list(ms = 1000 * st[["elapsed"]] / n, cpu_ms = 1000 * cpu / n,
       fit_ms = 1000 * fit_seconds / n, reject = mean(p < 0.05), singular = n_singular)
}

set.seed(20260101)
invisible(one_lmm_trial())  # warm-up
invisible(one_glmm_trial())
lmm_runs <- lapply(seq_len(repeats), function(r) time_loop(one_lmm_trial, n_lmm))
glmm_runs <- lapply(seq_len(repeats), function(r) time_loop(one_glmm_trial, n_glmm))

summarise <- function(runs, n, label) {
  ms <- vapply(runs, function(x) x$ms, numeric(1))
  fit_ms <- vapply(runs, function(x) x$fit_ms, numeric(1))
  cpu_ms <- vapply(runs, function(x) x$cpu_ms, numeric(1))
  rej <- mean(vapply(runs, function(x) x$reject, numeric(1)))
  singular <- sum(vapply(runs, function(x) x$singular, numeric(1)))
  cat(sprintf("%s: %d trials x %d repeats; ms per trial %s; median %.1f ms (the fit alone %.1f ms)",
              label, n, length(runs), paste(sprintf("%.1f", ms), collapse = ", "),
              median(ms), median(fit_ms)), "\n")
  cat(sprintf("  CPU time per trial %s; median %.1f ms (less disturbed by other work)",
              paste(sprintf("%.1f", cpu_ms), collapse = ", "), median(cpu_ms)), "\n")
  cat(sprintf(paste("  rejection rate at 0.05: %.3f (%d trials, %d singular fits);",
                    "10,000 trials would take %.1f min"),
              rej, n * length(runs), as.integer(singular), median(ms) * 10000 / 60000), "\n")
  list(trials = n, repeats = length(runs), ms_per_trial = ms,
       median_ms_per_trial = median(ms), median_fit_ms_per_trial = median(fit_ms),
       cpu_ms_per_trial = cpu_ms, median_cpu_ms_per_trial = median(cpu_ms),
       rejection_rate = rej, singular_fits = singular)
}

cat(sprintf("R %s, lme4 %s, pbkrtest %s\n", getRversion(), packageVersion("lme4"),
            packageVersion("pbkrtest")))
res <- list(
  lmm_kr = summarise(lmm_runs, n_lmm,
                     "lmer REML + pbkrtest KR, arm effect at 12 months (75 rows)"),
  glmm_laplace = summarise(glmm_runs, n_glmm,
                           "glmer Laplace binomial, arm effect, t(23) (about 1,500 rows)")
)
if (!is.na(out)) write_json(res, out, digits = NA, auto_unbox = TRUE)
