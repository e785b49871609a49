# Reference values for crtstats' psychometrics (cronbach_alpha, rater_icc) from R's psych.
#
# Run from the project root:  Rscript tests/reference/psych.R
# Writes tests/reference/data/psych_*.csv (the data used) and tests/reference/psych.json.
# The Python tests read only the committed CSV and JSON; they never need R.
suppressPackageStartupMessages({
  library(psych)
  library(jsonlite)
})
out_dir <- file.path("tests", "reference")
data_dir <- file.path(out_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

# ---- data -------------------------------------------------------------------------
set.seed(20240611)

# 60 reviews x 10 items scored 1-5 from one latent fidelity level plus item noise.
n <- 60; k <- 10
latent <- rnorm(n, 3, 0.6)
items <- sapply(seq_len(k), function(j) {
  pmin(5, pmax(1, round(latent + rnorm(1, 0, 0.3) + rnorm(n, 0, 0.7))))
})
colnames(items) <- sprintf("item_%02d", seq_len(k))
items <- as.data.frame(items)
write.csv(items, file.path(data_dir, "psych_alpha_items.csv"), row.names = FALSE)

# The same items with 25 cells missing at random.
items_na <- items
cells <- sample(n * k, 25)
for (cell in cells) items_na[(cell - 1) %% n + 1, (cell - 1) %/% n + 1] <- NA
write.csv(items_na, file.path(data_dir, "psych_alpha_items_missing.csv"),
          row.names = FALSE, na = "")

# Shrout and Fleiss (1979), table 2: 6 targets rated by 4 judges (shipped with psych's ICC help).
sf <- matrix(c(9, 2, 5, 8,
               6, 1, 3, 2,
               8, 4, 6, 8,
               7, 1, 2, 6,
               10, 5, 6, 9,
               6, 2, 4, 7), ncol = 4, byrow = TRUE)
colnames(sf) <- paste0("J", 1:4)
long <- function(m, targets) {
  data.frame(target = rep(targets, times = ncol(m)),
             rater = rep(colnames(m), each = nrow(m)),
             rating = as.vector(m))
}
write.csv(long(sf, paste0("S", 1:6)), file.path(data_dir, "psych_icc_shrout_fleiss.csv"),
          row.names = FALSE)

# 25 reviews, each totalled independently by 3 raters (rater 3 scores a little higher).
nt <- 25
truth <- rnorm(nt, 120, 12)
raters <- sapply(1:3, function(r) round(truth + c(0, 1, 4)[r] + rnorm(nt, 0, 6)))
colnames(raters) <- c("R1", "R2", "R3")
targets <- sprintf("T%02d", seq_len(nt))
raters_long <- long(raters, targets)
write.csv(raters_long, file.path(data_dir, "psych_icc_raters.csv"), row.names = FALSE)
# The same with two ratings missing (targets T04 and T17 become incomplete).
raters_na <- raters_long
raters_na$rating[raters_na$target == "T04" & raters_na$rater == "R2"] <- NA
raters_na <- raters_na[!(raters_na$target == "T17" & raters_na$rater == "R3"), ]
write.csv(raters_na, file.path(data_dir, "psych_icc_raters_missing.csv"),
          row.names = FALSE, na = "")

# ---- reference values ---------------------------------------------------------------
alpha_ref <- function(x) {
  a <- psych::alpha(x, warnings = FALSE)
  list(
    raw_alpha = a$total$raw_alpha, std_alpha = a$total$std.alpha,
    average_r = a$total$average_r,
    feldt_lower = a$feldt$lower.ci[[1]], feldt_upper = a$feldt$upper.ci[[1]],
    n_rows = nrow(x),
    items = rownames(a$item.stats),
    item_n = a$item.stats$n, item_mean = a$item.stats$mean, item_sd = a$item.stats$sd,
    r_drop = a$item.stats$r.drop,
    alpha_if_deleted = a$alpha.drop$raw_alpha,
    std_alpha_if_deleted = a$alpha.drop$std.alpha
  )
}
# lmer = FALSE: the classical two-way ANOVA mean squares of Shrout and Fleiss (1979).
# (psych's default lmer = TRUE estimates the same mean squares from REML variance
# components, which agree only to the optimiser's tolerance.)
icc_ref <- function(d) {
  wide <- reshape(d, idvar = "target", timevar = "rater", direction = "wide")
  wide <- na.omit(wide[, -1])
  r <- psych::ICC(as.matrix(wide), lmer = FALSE)
  list(
    type = r$results$type, icc = r$results$ICC, F = r$results$F,
    df1 = r$results$df1, df2 = r$results$df2, p = r$results$p,
    lower = r$results$`lower bound`, upper = r$results$`upper bound`,
    n_targets = r$n.obs, n_raters = r$n.judge,
    ms_between = r$stats["MS", "subjects"], ms_raters = r$stats["MS", "Judges"],
    ms_error = r$stats["MS", "Residual"], ms_within = r$MSW
  )
}

ref <- list(
  psych_version = as.character(packageVersion("psych")),
  r_version = R.version.string,
  alpha_complete = alpha_ref(items),
  # psych::alpha's default: pairwise-complete covariances (use = "pairwise")
  alpha_pairwise = alpha_ref(items_na),
  # listwise: psych::alpha on the complete rows only
  alpha_listwise = alpha_ref(na.omit(items_na)),
  # the Feldt interval at 90% for the complete data
  alpha_feldt_90 = psych::alpha.ci(alpha_ref(items)$raw_alpha, n, k, p.val = 0.10)[c("lower.ci", "upper.ci")],
  icc_shrout_fleiss = icc_ref(long(sf, paste0("S", 1:6))),
  icc_raters = icc_ref(raters_long),
  icc_raters_missing = icc_ref(raters_na)
)
jsonlite::write_json(ref, file.path(out_dir, "psych.json"), digits = NA, auto_unbox = TRUE,
                     pretty = TRUE)
cat("wrote", file.path(out_dir, "psych.json"), "\n")
