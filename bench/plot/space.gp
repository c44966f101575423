# Allocated bytes against the data written so far, one line per system.
# gnuplot -e "out='X.png'; data='space.dat'; n='5'" space.gp
# Data: per system a quoted name line, "written allocated" points, two blank lines.
set terminal pngcairo size 1000,700 font ",10" noenhanced
set output out
set title "Space allocated after each job against the data written"
set logscale x
set xlabel "bytes written by fio so far (log)"
set ylabel "allocated MiB (store dir / qcow2 / upper dir / file)"
set grid
set key outside right top
plot for [i=0:n-1] data index i using 1:($2/1048576) with linespoints lw 2 title columnheader(1)
