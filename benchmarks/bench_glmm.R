# Timing of the R fits that benchmarks/bench_glmm.py compares crtstats.glmm with.
# Usage: Rscript benchmarks/bench_glmm.R DIR REPEATS
# DIR holds binary.csv and counts.csv (written by bench_glmm.py). Prints one JSON line:
# median elapsed seconds of REPEATS fits after one warm-up, and the log-likelihoods.

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
dir <- args[[1]]
repeats <- as.integer(args[[2]])
binary <- read.csv(file.path(dir, "binary.csv"))
counts <- read.csv(file.path(dir, "counts.csv"))

median_time <- function(fit) {
  fit()
  times <- vapply(seq_len(repeats), function(i) system.time(fit())[["elapsed"]], 0)
  median(times)
}

fit_binary <- function() {
  glmer(admitted ~ arm + age_c + (1 | team_id), data = binary, family = binomial, nAGQ = 10)
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
  binomial_loglik = as.numeric(logLik(b)) + saturated,
  nb2_loglik = as.numeric(logLik(fit_counts()))
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA), "\n")
