# Reference values for crtstats.models.negative_binomial_rate (team-level NB2 GLM).
#
# Run from the project folder:  Rscript tests/reference/nb_glm.R
# Writes the generated team-level data to tests/reference/data/nb_glm_teams.csv and the
# fits to tests/reference/nb_glm.json (full precision). MASS::glm.nb is run with a tight
# control, then polished to the maximum likelihood: theta by theta.ml (eps 1e-13) at the
# current means, beta by glm() with that theta fixed (epsilon 1e-15), until theta moves
# by less than 1e-12 relative. Standard errors use dispersion 1, as summary(glm.nb).

suppressPackageStartupMessages({
  library(MASS)
  library(jsonlite)
})

set.seed(20260301)
g <- 40
teams <- data.frame(
  team_id = sprintf("T%02d", seq_len(g)),
  arm = rep(c("control", "intervention"), each = g / 2),
  stratum = rep(c("S1", "S2", "S3", "S4"), times = g / 4),
  n_users = sample(40:160, g, replace = TRUE),
  log_pre_rate = round(rnorm(g, -1.2, 0.3), 6)
)
mu <- with(teams, n_users * exp(-1.0 - 0.3 * (arm == "intervention") + 0.1 * (stratum == "S2")
                                + 0.6 * (log_pre_rate + 1.2)))
teams$admissions <- rnbinom(g, size = 4, mu = mu)
data_dir <- file.path("tests", "reference", "data")
write.csv(teams, file.path(data_dir, "nb_glm_teams.csv"), row.names = FALSE)

polish <- function(formula, data) {
  fit <- glm.nb(formula, data = data, control = glm.control(epsilon = 1e-13, maxit = 1000))
  th <- fit$theta
  for (i in 1:100) {
    gl <- glm(formula, family = negative.binomial(th), data = data,
              control = glm.control(epsilon = 1e-15, maxit = 1000))
    th_new <- theta.ml(model.response(model.frame(gl)), fitted(gl), limit = 100, eps = 1e-13)
    done <- abs(th_new - th) < 1e-12 * th
    th <- as.numeric(th_new)
    if (done) break
  }
  gl <- glm(formula, family = negative.binomial(th), data = data,
            control = glm.control(epsilon = 1e-15, maxit = 1000))
  s <- summary(gl, dispersion = 1)$coefficients
  list(names = rownames(s), coef = unname(s[, 1]), se = unname(s[, 2]), theta = th,
       glm_nb_theta = fit$theta, glm_nb_coef = unname(coef(fit)))
}

out <- list(
  adjusted = polish(admissions ~ arm + stratum + log_pre_rate + offset(log(n_users)), teams),
  unadjusted = polish(admissions ~ arm + offset(log(n_users)), teams)
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path("tests", "reference", "nb_glm.json"))
