# Timing of the geepack fit that benchmarks/bench_gee.py compares crtstats.gee with.
# Usage: Rscript benchmarks/bench_gee.R DIR REPEATS
# DIR holds ohio.csv (written by bench_gee.py). Prints one JSON line: median elapsed
# seconds of REPEATS fits after one warm-up (model fitting only, no start-up or data
# reading), and the estimates for a check.

suppressPackageStartupMessages({
  library(geepack)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
dir <- args[[1]]
repeats <- as.integer(args[[2]])
ohio <- read.csv(file.path(dir, "ohio.csv"))

median_time <- function(fit) {
  fit()
  times <- vapply(seq_len(repeats), function(i) system.time(fit())[["elapsed"]], 0)
  median(times)
}

ctrl <- geese.control(epsilon = 1e-12, maxit = 100)
fit_default <- function() {
  geeglm(resp ~ age + smoke + age:smoke, id = id, data = ohio, family = binomial,
         corstr = "exchangeable")
}
fit_tight <- function() {
  geeglm(resp ~ age + smoke + age:smoke, id = id, data = ohio, family = binomial,
         corstr = "exchangeable", control = ctrl)
}
fit_jack <- function() {
  geeglm(resp ~ age + smoke + age:smoke, id = id, data = ohio, family = binomial,
         corstr = "exchangeable", control = ctrl, std.err = "jack")
}

f <- fit_tight()
out <- list(
  geeglm_default = median_time(fit_default),
  geeglm_tight = median_time(fit_tight),
  geeglm_jack = median_time(fit_jack),
  alpha = f$geese$alpha[[1]],
  coef = unname(coef(f))
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA), "\n")
