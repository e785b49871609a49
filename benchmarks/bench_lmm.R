# Times lme4::lmer + pbkrtest (Kenward-Roger covariance and df for every coefficient)
# on the CSV files written by bench_lmm.py. Usage: Rscript bench_lmm.R FOLDER OUT.json
# pbkrtest forms n x n matrices, so it is skipped above 20,000 rows (reported as NA);
# the lmer fit alone is timed for every case.
suppressPackageStartupMessages({
  library(lme4)
  library(pbkrtest)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]
out <- args[2]

median_ms <- function(expr_fn, repeats) {
  expr_fn()  # warm-up
  times <- replicate(repeats, system.time(expr_fn())[["elapsed"]])
  1000 * median(times)
}

kr_all <- function(fit) {
  vadj <- vcovAdj(fit)
  v0 <- as.matrix(vcov(fit))
  p <- length(fixef(fit))
  sapply(seq_len(p), function(j) { L <- numeric(p); L[j] <- 1; Lb_ddf(L, v0, vadj) })
}

result <- list()
for (key in c("a", "b", "c")) {
  d <- read.csv(file.path(folder, paste0("case_", key, ".csv")))
  d$review <- factor(d$review, levels = c("baseline", "6m", "12m"))
  fixed <- readLines(file.path(folder, paste0("case_", key, ".formula")))
  form <- as.formula(paste(fixed, "+ (1 | team)"))
  reps <- if (nrow(d) > 20000) 3 else 10
  lmer_ms <- median_ms(function() lmer(form, data = d), reps)
  kr_ms <- if (nrow(d) > 20000) NA else
    median_ms(function() kr_all(lmer(form, data = d)), reps)
  message(sprintf("(%s) %d rows: lmer %.1f ms, lmer + KR %s ms", key, nrow(d), lmer_ms,
                  format(kr_ms, digits = 4)))
  result[[key]] <- list(lmer_ms = lmer_ms, lmer_kr_ms = kr_ms)
}
write_json(result, out, digits = NA, auto_unbox = TRUE, na = "null")
