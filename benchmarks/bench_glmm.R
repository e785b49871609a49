# Timing of the R fits that benchmarks/bench_glmm.py compares crtstats.glmm with.
# Usage: Rscript benchmarks/bench_glmm.R DIR REPEATS LARGE_REPEATS
# DIR holds binary.csv, counts.csv and large.csv (written by bench_glmm.py). Prints one
# JSON line: median elapsed seconds of REPEATS fits (LARGE_REPEATS for the 100,000-row
# fit) after one warm-up, and the log-likelihoods.

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
dir <- args[[1]]
repeats <- as.integer(args[[2]])
large_repeats <- as.integer(args[[3]])
binary <- read.csv(file.path(dir, "binary.csv"))
counts <- read.csv(file.path(dir, "counts.csv"))
large <- read.csv(file.path(dir, "large.csv"))

median_time <- function(fit, n = repeats) {
  fit()
  times <- vapply(seq_len(n), function(i) system.time(fit())[["elapsed"]], 0)
  median(times)
}

fit_binary <- function() {
  glmer(admitted ~ arm + age_c + (1 | team_id), data = binary, family = binomial, nAGQ = 10)
}
fit_large <- function() {
  glmer(admitted ~ arm + age_c + (1 | team_id), data = large, family = binomial)
}
fit_counts <- function() {
  glmmTMB(admissions ~ arm * period + offset(log_users) + (1 | team_id), data = counts,
          family = nbinom2)
}

b <- fit_binary()
saturated <- 0  # 0/1 data: lme4's nAGQ > 1 logLik has no saturated term to add back
out <- list(
  binomial_agq10 = median_time(fit_binary),
  nb2_laplace = median_time(fit_counts),
  binomial_large = median_time(fit_large, large_repeats),
  large_loglik = as.numeric(logLik(fit_large())),
  binomial_loglik = as.numeric(logLik(b)) + saturated,
  nb2_loglik = as.numeric(logLik(fit_counts()))
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA), "\n")
