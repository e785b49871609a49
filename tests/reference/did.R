# Reference values for crtstats.fidelity_did (team fixed-effects difference-in-differences
# of the fidelity panel).
#
# Run from the project root:  Rscript tests/reference/did.R
# Reads tests/reference/data/lmm_fidelity.csv (the shipped example trial's fidelity
# totals, one row per team and review; one control team has no 6-month review) and
# writes tests/reference/did.json. Packages: sandwich, clubSandwich, jsonlite.
#
# Model: total ~ factor(team) + factor(review) + int_6m + int_12m, where
# int_r = 1 for intervention teams at review r (the arm x review effects; the arm main
# effect is absorbed by the team effects). Covariance clustered by team:
#   sandwich::vcovCL(type = "HC1"): G / (G - 1) * (n - 1) / (n - k) * bread meat bread,
#   k counting every coefficient (team and review effects included), and
#   clubSandwich CR1 (G / (G - 1) only; recorded to show which convention is matched).
# Tests are t with G - 1 df.

suppressPackageStartupMessages({
  library(sandwich)
  library(clubSandwich)
  library(jsonlite)
})

data_dir <- file.path("tests", "reference", "data")
out_path <- file.path("tests", "reference", "did.json")

fid <- read.csv(file.path(data_dir, "lmm_fidelity.csv"), stringsAsFactors = FALSE)
fid$review <- factor(fid$review, levels = c("baseline", "6m", "12m"))
fid$int_6m <- as.numeric(fid$arm == "intervention" & fid$review == "6m")
fid$int_12m <- as.numeric(fid$arm == "intervention" & fid$review == "12m")

fit <- lm(total ~ factor(team_id) + review + int_6m + int_12m, data = fid)
G <- length(unique(fid$team_id))
terms <- c("int_6m", "int_12m")

v_hc1 <- vcovCL(fit, cluster = ~ team_id, type = "HC1", cadjust = TRUE)
v_cr1 <- as.matrix(vcovCR(fit, cluster = fid$team_id, type = "CR1"))

inference <- function(V) {
  est <- coef(fit)[terms]
  se <- sqrt(diag(V)[terms])
  tval <- est / se
  p <- 2 * pt(abs(tval), df = G - 1, lower.tail = FALSE)
  q <- qt(0.975, df = G - 1)
  list(se = unname(se), pvalue = unname(p), conf_low = unname(est - q * se),
       conf_high = unname(est + q * se), cov = unname(V[terms, terms]))
}

out <- list(
  terms = terms,
  nobs = nobs(fit),
  n_clusters = G,
  k = length(coef(fit)),
  df = G - 1,
  estimate = unname(coef(fit)[terms]),
  hc1 = inference(v_hc1),
  cr1 = inference(v_cr1)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_path)
cat("wrote", out_path, "\n")
